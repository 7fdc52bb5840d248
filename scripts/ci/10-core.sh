#!/usr/bin/env bash
# Core library and CLI: formatting, lints, unit/integration/doc tests, vectors, man pages.
# (The gateway's tests run in their own stage, which starts the SIP peers they need.)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt openssl xxd
need_pip cryptography cryptography

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy (every crate, target and feature)" cargo clippy --workspace --all-targets --all-features -- -D warnings
step "vectors are reproducible by the Python implementation" python3 tests/vectors/make_vectors.py --check
step "cargo test (library, CLI, vectors, openssl, properties, doc examples)" \
  cargo test -p siptoken --no-default-features --features cli
step "benchmarks compile" cargo bench --no-run -p siptoken --no-default-features --bench tokens
