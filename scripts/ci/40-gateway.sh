#!/usr/bin/env bash
# Gateway (issue 5): lints, unit tests, and the siptoken-gateway binary against real peers it
# starts itself on loopback — Kamailio (registrar), sipp (faulty registrars), dnsmasq
# (NAPTR/SRV/A/AAAA records: server location, failover, allowed_registrars), headless Chromium
# (the demo page). The tests that need those peers are #[ignore]d in a
# plain `cargo test`; this stage runs them with --include-ignored after installing the peers.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt kamailio kamailio-tls-modules sip-tester chromium dnsmasq-base openssl
command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm
# playwright-core drives Debian's /usr/bin/chromium; installed test-locally, never a browser download.
node_dir=target/gateway-node
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"private":true}' >"$node_dir/package.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.65.1
fi
export SIPTOKEN_NODE_MODULES="$PWD/$node_dir/node_modules"

gateway_tests=(--test gateway_parsers --test gateway_tokens --test gateway_kamailio --test gateway_dns --test gateway_sipp --test gateway_browser --test gateway_man)

step "gateway: rustfmt" cargo fmt -p siptoken-gateway -- --check
step "gateway: clippy" cargo clippy -p siptoken-gateway --all-targets -- -D warnings
step "gateway: unit tests (parser, digest, config, replay, limits)" cargo test -p siptoken-gateway --lib --bins
step "gateway: integration tests (Kamailio, sipp, Chromium)" \
  cargo test -p siptoken-gateway "${gateway_tests[@]}" -- --include-ignored
