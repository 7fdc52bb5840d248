#!/usr/bin/env bash
# Gateway under load (issue 6), short version: 2,000 WebSocket sessions logged in through
# siptoken-gateway to a real Kamailio (sipp registering as many accounts directly beside them),
# held 30 s with a 20 s register expiry (every session refreshes at least once, 3-9 s before its
# binding would expire, so a slow CI machine does not turn into a lost registration), then logged
# out; then 2,000 more carried by two HTTP/2 connections (RFC 8441), held and logged out the same
# way; then a flood of 10 HTTP/2 connections x 1000 silent streams from one address, which must
# get no more than max_sessions_per_ip and leave room for others (issue 14); then a short call
# benchmark (issue 13): 20 simulated browsers calling sipp's RTP echo through the gateway and
# Kamailio for 15 s, beside sipp calling it directly and a bare UDP forwarder (20, not 50: the
# debug gateway spends ~150 µs per relayed packet, and at 50 calls on a loaded 2-core machine its
# receive buffers overflow; the release figures are in docs/performance.md). Fails on any error,
# lost registration or leftover binding; never on speed (the figures are
# printed only). Uses the debug build the gateway stage already made; full size and release
# figures: benches/gateway_load.sh and docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt kamailio sip-tester

ulimit -n "$(ulimit -Hn)"
# The load tool kills Kamailio and the gateway when it ends or gets SIGTERM/SIGINT.
kill_background_on_exit

run_load() {
  timeout --signal=TERM --kill-after=20 240 target/debug/examples/gateway_load \
    --gateway target/debug/siptoken-gateway --sessions 2000 --concurrency 128 \
    --hold 30 --register-expires 20 "$@" &
  pid=$!
  wait "$pid"
}

step "load: build (debug, shared with the gateway stage)" \
  cargo build -p siptoken-gateway --bin siptoken-gateway --example gateway_load \
  --example gateway_calls_load
step "load: 2,000 sessions through the gateway, 30 s hold, sipp beside" run_load
step "load: 2,000 sessions on two HTTP/2 connections, 30 s hold" \
  run_load --http2 1000 --no-sipp --no-half-rate
step "load: a flood of 10 HTTP/2 connections x 1000 silent streams from one address (issue 14)" \
  cargo test -p siptoken-gateway --test gateway_abuse ten_thousand_http2_streams_at_the_defaults \
  -- --include-ignored --nocapture

run_calls() {
  timeout --signal=TERM --kill-after=20 120 target/debug/examples/gateway_calls_load \
    --gateway target/debug/siptoken-gateway --calls 20 --hold 15 --floor 5 --probes 5 \
    --setup-concurrency 20 --max-loss 0.02 "$@" &
  pid=$!
  wait "$pid"
}
step "load: 20 calls through the gateway to sipp's RTP echo for 15 s, audio loss checked (issue 13)" \
  run_calls
