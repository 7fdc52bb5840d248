#!/usr/bin/env bash
# Core library and CLI: formatting, lints, unit/integration/doc tests, vectors, man page.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt openssl xxd
need_pip cryptography cryptography

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "vectors are reproducible by the Python implementation" python3 tests/vectors/make_vectors.py --check
step "cargo test" cargo test --workspace
