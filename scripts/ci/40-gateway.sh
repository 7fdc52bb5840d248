#!/usr/bin/env bash
# Gateway (issue 5): lints, unit tests, and the siptoken-gateway binary against real peers it
# starts itself on loopback — Kamailio (registrar), sipp (faulty registrars), dnsmasq (SRV
# records), headless Chromium (the demo page). The peer tests run only with SIPTOKEN_GATEWAY_PEERS=1, which this stage sets.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt kamailio sip-tester chromium dnsmasq-base openssl
command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm
# playwright-core drives Debian's /usr/bin/chromium; installed test-locally, never a browser download.
node_dir=target/gateway-node
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"private":true}' >"$node_dir/package.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.65.1
fi
export SIPTOKEN_NODE_MODULES="$PWD/$node_dir/node_modules"
export SIPTOKEN_GATEWAY_PEERS=1

gateway_tests=(--test gateway_parsers --test gateway_tokens --test gateway_kamailio --test gateway_sipp --test gateway_browser --test gateway_man)

no_async_stack_without_the_feature() {
  # The bindings build the core with default-features = false: no tokio, axum or hyper then.
  if cargo tree --no-default-features -e normal --prefix none | grep -E '^(tokio|axum|hyper|tracing) '; then
    echo "the async stack leaks into --no-default-features"
    return 1
  fi
}

step "gateway: rustfmt" rustfmt --edition 2021 --check src/gateway/*.rs src/gateway/sip/*.rs \
  src/bin/siptoken-gateway/main.rs tests/gateway_*.rs tests/gateway/harness.rs
step "gateway: clippy" cargo clippy --features gateway --lib --bin siptoken-gateway "${gateway_tests[@]}" -- -D warnings
step "gateway: core builds without the async stack" no_async_stack_without_the_feature
step "gateway: unit tests (parser, digest, config, replay, limits)" cargo test --features gateway --lib gateway::
step "gateway: integration tests (Kamailio, sipp, Chromium)" cargo test --features gateway "${gateway_tests[@]}"
