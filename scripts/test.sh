#!/usr/bin/env bash
# The project's one test command (named in README.md, run by .ci/run).
#
# Installs what the tests need (Debian packages, PyPI and npm packages, toolchains) idempotently,
# starts the servers they need, and runs every stage in scripts/ci/ in order. A failing stage does
# not stop the others; the exit status is non-zero if any failed.
#
#   scripts/test.sh            every stage
#   scripts/test.sh core c     only the stages whose names contain these words
set -uo pipefail
cd "$(dirname "$0")/.."

# Disk: a full run builds the workspace in debug, release, fuzz and WASM flavours, and a CI
# machine's disk is shared and sometimes nearly full (a run once died of ENOSPC in the gateway
# stage). Incremental caches are useless on a clean clone, and full debug info triples the size of
# every test binary; line tables keep file:line in panics and backtraces. Set either variable to
# override.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}
free_disk() { df -h --output=avail . | tail -1 | tr -d ' '; }
echo "free disk at start: $(free_disk)"

passed=0
failed=0
failures=()
for stage in scripts/ci/*.sh; do
  name=$(basename "$stage" .sh)
  if [ $# -gt 0 ]; then
    wanted=0
    for w in "$@"; do [[ $name == *"$w"* ]] && wanted=1; done
    [ $wanted -eq 1 ] || continue
  fi
  echo "=== stage $name"
  t0=$SECONDS
  if bash "$stage"; then
    passed=$((passed + 1))
    echo "=== stage $name: passed ($((SECONDS - t0)) s, $(free_disk) free)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== stage $name: FAILED ($((SECONDS - t0)) s, $(free_disk) free)"
  fi
done
echo
[ $failed -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
