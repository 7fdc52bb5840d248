#!/usr/bin/env bash
# Core library and CLI: formatting, lints, unit/integration/doc tests, vectors, man pages.
# (The gateway's tests run in their own stage, which starts the SIP peers they need.)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt openssl xxd
need_pip cryptography cryptography

# What a library user gets with `siptoken = "…"` in a Cargo.toml: the token crates only.
core_is_lean() {
  local crates
  crates=$(cargo tree -p siptoken -e normal --prefix none | sort -u)
  echo "$(wc -l <<<"$crates") lines in cargo tree -p siptoken -e normal (limit 45)"
  [ "$(wc -l <<<"$crates")" -le 45 ] || return 1
  if grep -E '^(tokio|axum|hyper|ring|aws-lc-rs|rustls|clap|tracing) ' <<<"$crates"; then
    echo "the core library depends on the crates above; they belong to the CLI or the gateway"
    return 1
  fi
}

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy (every crate, target and feature)" cargo clippy --workspace --all-targets --all-features -- -D warnings
step "the core library pulls no async stack, TLS or argument parser" core_is_lean
step "vectors are reproducible by the Python implementation" python3 tests/vectors/make_vectors.py --check
step "cargo test (library, CLI, vectors, openssl, properties, doc examples)" \
  cargo test -p siptoken -p siptoken-cli
step "benchmarks compile" cargo bench --no-run -p siptoken --bench tokens
