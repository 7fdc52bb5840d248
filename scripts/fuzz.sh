#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (libFuzzer, nightly toolchain).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 60 s each, every target
#   FUZZ_GROW=1 scripts/fuzz.sh 600            let new inputs land in fuzz/corpus/ (then
#                                              `cargo +nightly fuzz cmin TARGET` and commit)
#
# Without FUZZ_GROW the committed corpus is only read: new inputs go to a temporary directory.
# Exits non-zero on the first crash, leaving the reproducer in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SECONDS_EACH=${1:-60}
shift || true
FUZZ_VERSION=0.13.2

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "scripts/fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$FUZZ_VERSION"; then
  echo "installing cargo-fuzz $FUZZ_VERSION"
  cargo install --quiet cargo-fuzz --version "$FUZZ_VERSION"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd fuzz
cargo +nightly fuzz build --release
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  if [ -n "${FUZZ_GROW:-}" ]; then
    dirs=("corpus/$t")
  else
    mkdir -p "$scratch/$t"
    dirs=("$scratch/$t" "corpus/$t")
  fi
  echo "--- fuzz $t for ${SECONDS_EACH}s"
  status=0
  cargo +nightly fuzz run --release "$t" "${dirs[@]}" -- \
    -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$scratch/$t.log" 2>&1 || status=$?
  grep -E "^#[0-9]+ +DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$scratch/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$scratch/$t.log" >&2
    echo "fuzz target $t failed (exit $status); reproducer in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
