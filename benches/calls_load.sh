#!/usr/bin/env bash
# Calls under load (issue 13), full size: builds siptoken-gateway and the call load tool in
# release mode and runs crates/siptoken-gateway/examples/gateway_calls_load.rs: simulated browsers
# (str0m, DTLS-SRTP) logging in with tokens and calling a sipp callee (its SDP pointing at the
# tool's RTP echo) through the gateway and Kamailio (registrar and proxy) on loopback; sipp
# calling the same callee directly beside it; a bare UDP forwarder of the same packets to the
# same echo as the CPU floor. Figures and method: docs/performance.md,
# "Calls".
#
#   benches/calls_load.sh [gateway_calls_load options]
#   e.g. benches/calls_load.sh --calls 500 --hold 60 --setup-concurrency 50
#
# The tool starts and stops sipp, Kamailio and the gateway itself (each in its own process group,
# killed on exit, also on failure); the trap set below covers an interrupted build or run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_apt kamailio sip-tester
ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

cargo build --release -p siptoken-gateway --bin siptoken-gateway --example gateway_calls_load
target_dir="${CARGO_TARGET_DIR:-target}"

kill_background_on_exit
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--calls 500 --hold 60 --setup-concurrency 50 --floor 30)
"$target_dir/release/examples/gateway_calls_load" --gateway "$target_dir/release/siptoken-gateway" "${args[@]}" &
pid=$!
wait "$pid"
