#!/usr/bin/env bash
# Gateway (issue 5): lints, unit tests, and the siptoken-gateway binary against real peers it
# starts itself on loopback — Kamailio (registrar), sipp (faulty registrars), dnsmasq (NAPTR, SRV,
# A/AAAA records: server location, failover, allowed_registrars), headless Chromium (the demo
# page, calls) and headless Firefox (the softphone page, calls). The tests that need those peers
# are #[ignore]d in a plain `cargo test`; this stage runs them with --include-ignored after
# installing the peers.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt kamailio kamailio-tls-modules sip-tester chromium firefox-esr dnsmasq-base openssl baresip-core iproute2 util-linux
command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm
# playwright-core drives Debian's /usr/bin/chromium (demo page, browser phone); puppeteer-core
# drives it and /usr/bin/firefox-esr (WebDriver BiDi) for the softphone page, whose scripted
# gateway is a ws server. Installed test-locally, never a browser download.
node_dir=target/gateway-node
node_packages=()
for package in playwright-core@1.65.1 puppeteer-core@24.43.1 ws@8.23.1; do
  [ -d "$node_dir/node_modules/${package%@*}" ] || node_packages+=("$package")
done
if [ "${#node_packages[@]}" -gt 0 ]; then
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"private":true}' >"$node_dir/package.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
    npm install --prefix "$node_dir" --no-audit --no-fund --silent "${node_packages[@]}"
fi
export SIPTOKEN_NODE_MODULES="$PWD/$node_dir/node_modules"

gateway_tests=(--test gateway_tokens --test gateway_kamailio --test gateway_sipp --test gateway_dns --test gateway_browser --test gateway_man --test gateway_media)
# No unwiped copy of the password or HA1 in freed memory (issue 14, item 9).
gateway_tests+=(--test digest_secrets)

step "gateway: unit tests (parser, digest, config, replay, limits)" cargo test -p siptoken-gateway --lib --bins
step "gateway: integration tests (Kamailio, sipp, Chromium)" \
  cargo test -p siptoken-gateway "${gateway_tests[@]}" -- --include-ignored

# Calls with real browsers: Chromium and Firefox offer a host candidate on every interface and the
# gateway (ICE-lite) answers whichever checks arrive, so these run in a network namespace of their
# own with loopback only (the tests refuse to run elsewhere); built outside it first.
calls_tests=(--test gateway_calls --test softphone_browser --test softphone_gateway)
in_loopback_namespace() {
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
}
step "calls: build" cargo test -p siptoken-gateway "${calls_tests[@]}" --no-run
step "calls: Chromium and Firefox through the gateway and Kamailio to sipp and baresip, audio checked both ways" \
  in_loopback_namespace cargo test --offline -p siptoken-gateway "${calls_tests[@]}" -- --include-ignored --test-threads 2
