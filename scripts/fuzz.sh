#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ with libFuzzer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s each, every target
#   FUZZ_SANITIZER=none scripts/fuzz.sh 15    without AddressSanitizer (faster to build; the CI
#                                             smoke uses this: the fuzzed code forbids unsafe)
#   FUZZ_SEED=1 FUZZ_RUNS=300000 scripts/fuzz.sh
#                                             a fixed seed and a fixed number of inputs per target
#                                             (instead of a time): exactly the same inputs on every
#                                             run and every machine, as CI does
#   FUZZ_RUNS_sdp=20000 scripts/fuzz.sh       FUZZ_RUNS for one target only
#   FUZZ_GROW=1 scripts/fuzz.sh 600           let new inputs land in fuzz/corpus/ (then minimise
#                                             with `-merge=1` or `cargo +nightly fuzz cmin`)
#
# fuzz/ is an ordinary cargo-fuzz project (`cargo +nightly fuzz run TARGET` works); this script
# builds the targets itself with the flags cargo-fuzz passes to rustc, so it needs only the
# nightly toolchain and a C++ compiler (libfuzzer-sys builds libFuzzer) — no cargo-fuzz install.
# Without FUZZ_GROW the committed corpus is only read. Exits non-zero on the first failure,
# leaving the reproducer in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
SECONDS_EACH=${1:-60}
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "scripts/fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cdebug-assertions"
case "${FUZZ_SANITIZER:-address}" in
  address) flags+=" -Zsanitizer=address" ;;
  none) ;;
  *) echo "scripts/fuzz.sh: FUZZ_SANITIZER must be address or none" >&2; exit 2 ;;
esac
target_dir="target/libfuzzer-${FUZZ_SANITIZER:-address}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^path = "fuzz_targets\/\(.*\)\.rs"$/\1/p' Cargo.toml)
fi

echo "building ${#targets[@]} fuzz targets (sanitizer: ${FUZZ_SANITIZER:-address})"
RUSTFLAGS="$flags" cargo +nightly build --quiet --release --target "$host" --target-dir "$target_dir" \
  "${targets[@]/#/--bin=}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  if [ -n "${FUZZ_GROW:-}" ]; then
    dirs=("corpus/$t")
  else
    mkdir -p "$scratch/$t"
    dirs=("$scratch/$t" "corpus/$t")
  fi
  # FUZZ_RUNS_<target> overrides FUZZ_RUNS for one target (a slow one, e.g. sdp).
  runs_var="FUZZ_RUNS_$t"
  runs=${!runs_var:-${FUZZ_RUNS:-}}
  if [ -n "$runs" ]; then
    echo "--- fuzz $t: $runs inputs"
  else
    echo "--- fuzz $t for ${SECONDS_EACH}s"
  fi
  status=0
  seed=()
  [ -z "${FUZZ_SEED:-}" ] || seed=(-seed="$FUZZ_SEED")
  limit=(-max_total_time="$SECONDS_EACH")
  [ -z "$runs" ] || limit=(-runs="$runs")
  "$target_dir/$host/release/$t" "${dirs[@]}" "${seed[@]}" "${limit[@]}" -artifact_prefix="artifacts/$t/" \
    -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$scratch/$t.log" 2>&1 || status=$?
  grep -E "^#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$scratch/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$scratch/$t.log" >&2
    echo "fuzz target $t failed (exit $status); reproducer in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
