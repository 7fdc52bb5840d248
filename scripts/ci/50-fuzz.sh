#!/usr/bin/env bash
# A short smoke run of every fuzz target: the committed corpora replayed, then 15 s of new
# inputs each, built without AddressSanitizer to keep CI short (the fuzzed crates forbid unsafe
# code or keep it out of these paths). Long runs, with ASan: scripts/fuzz.sh 600.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
export FUZZ_SANITIZER=none
step "fuzz smoke" scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
