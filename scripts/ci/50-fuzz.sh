#!/usr/bin/env bash
# A smoke run of every fuzz target: the committed corpora replayed, then a fixed number of new
# inputs from a fixed seed, built without AddressSanitizer to keep CI short (the fuzzed crates
# forbid unsafe code or keep it out of these paths). The same inputs on every run and machine,
# so a green run stays green for the same code; open-ended search is for long runs:
# scripts/fuzz.sh 600 (with ASan).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
export FUZZ_SANITIZER=none FUZZ_SEED=1 FUZZ_RUNS=${FUZZ_RUNS:-300000}
# Each sdp input may build a whole str0m answer (certificate, ICE, DTLS state): far fewer.
export FUZZ_RUNS_sdp=${FUZZ_RUNS_sdp:-20000}
# The smoke build (about 2.5 GB) is of no use to later stages: freed when the stage ends.
trap 'rm -rf fuzz/target/libfuzzer-none' EXIT
step "fuzz smoke" scripts/fuzz.sh
