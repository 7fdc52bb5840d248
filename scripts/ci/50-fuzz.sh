#!/usr/bin/env bash
# A short smoke run of every fuzz target (the committed corpora replayed, then 15 s of new
# inputs each). Long runs: scripts/fuzz.sh 600.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
step "fuzz smoke" scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
