#!/usr/bin/env bash
# Token issuing, side by side, in one run: the openssl pipeline integrators use today versus
# `siptoken issue --batch` and versus one `siptoken issue` process per account.
#
#   benches/compare.sh [N]        (default N = 10000 accounts)
#
# Prints tokens/s for each and the ratios. Not a test: numbers depend on the machine; see
# docs/performance.md for recorded runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
cargo build --release -q -p siptoken-cli --bin siptoken
S=$PWD/target/release/siptoken
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
KEY=8263D535FFFFFFFF7B0F60
printf 'CRM=%s\nCRM.k1=%s\n' "$KEY" 6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2 > "$work/keys.conf"
chmod 600 "$work/keys.conf"
EXPIRES=$(( $(date +%s) + 300 ))

# Accounts: plain values, so the pipeline's lack of escaping does not matter here.
for ((i = 0; i < N; i++)); do
  printf '{"login":"op%05d","password":"pw%05dX","domain":"sip.example.org","visibleName":"Operator %d","expires":%d}\n' "$i" "$i" "$i" "$EXPIRES"
done > "$work/accounts.jsonl"

now() { date +%s.%N; }
rate() { python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[2]); print(f'{n / t:,.0f}')" "$1" "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "accounts: $N"

t0=$(now)
for ((i = 0; i < N; i++)); do
  xml=$(printf '<root login="op%05d" password="pw%05dX" domain="sip.example.org" visibleName="Operator %d" expires="%d"/>' "$i" "$i" "$i" "$EXPIRES")
  printf 'CRM:%s\n' "$(printf '%s' "$xml" | openssl enc -aes-128-ctr -nosalt -K "$KEY" -iv 00000000000000000000000000000000 2>/dev/null | xxd -p | tr -d '\n')"
done > "$work/openssl.txt"
t_openssl=$(python3 -c "print($(now) - $t0)")

t0=$(now)
"$S" issue --legacy --keys "$work/keys.conf" --app CRM --batch "$work/accounts.jsonl" > "$work/batch-legacy.txt"
t_batch_legacy=$(python3 -c "print($(now) - $t0)")

t0=$(now)
"$S" issue --keys "$work/keys.conf" --app CRM --batch "$work/accounts.jsonl" > "$work/batch-v1.txt"
t_batch_v1=$(python3 -c "print($(now) - $t0)")

t0=$(now)
for ((i = 0; i < N; i++)); do
  printf 'pw%05dX' "$i" | "$S" issue --legacy --keys "$work/keys.conf" --app CRM --login "$(printf 'op%05d' "$i")" \
    --domain sip.example.org --visible-name "Operator $i" --expires "$EXPIRES" --password-stdin
done > "$work/single.txt"
t_single=$(python3 -c "print($(now) - $t0)")

# The legacy outputs must be identical: same accounts, same bytes.
if ! cmp -s "$work/openssl.txt" "$work/batch-legacy.txt" || ! cmp -s "$work/openssl.txt" "$work/single.txt"; then
  echo "ERROR: siptoken --legacy and the openssl pipeline disagree" >&2
  exit 1
fi
echo "outputs: openssl pipeline, siptoken --batch --legacy and single siptoken processes are byte-identical"
echo
printf '%-40s %12s tokens/s\n' "openssl pipeline (1 per account)" "$(rate "$N" "$t_openssl")"
printf '%-40s %12s tokens/s\n' "siptoken issue (1 process per account)" "$(rate "$N" "$t_single")"
printf '%-40s %12s tokens/s\n' "siptoken issue --batch --legacy" "$(rate "$N" "$t_batch_legacy")"
printf '%-40s %12s tokens/s\n' "siptoken issue --batch (v1)" "$(rate "$N" "$t_batch_v1")"
echo
python3 - "$t_openssl" "$t_single" "$t_batch_legacy" "$t_batch_v1" <<'PY'
import sys
o, s, bl, bv = map(float, sys.argv[1:])
print(f"batch (v1) vs pipeline:      {o / bv:8.0f}x")
print(f"batch (legacy) vs pipeline:  {o / bl:8.0f}x")
print(f"single process vs pipeline:  {o / s:8.2f}x")
PY
