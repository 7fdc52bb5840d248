#!/usr/bin/env bash
# Gateway under load (issue 6), full size: builds siptoken-gateway and the load tool in release
# mode and runs crates/siptoken-gateway/examples/gateway_load.rs against a real Kamailio and sipp on loopback.
#
#   benches/gateway_load.sh [gateway_load options]
#   e.g. benches/gateway_load.sh --sessions 20000 --hold 600 --register-expires 60 --http2 1000
#
# Over HTTP/1.1 each session holds one descriptor in the gateway (its WebSocket; the SIP socket
# is shared), so the open-files limit caps one gateway at a little under `ulimit -Hn` sessions;
# over HTTP/2 (`--http2 N`: N sessions per connection) a connection carries many.
# The tool starts and stops Kamailio and the gateway itself (each in its own process group,
# killed on exit, also on failure); the trap set below covers an interrupted build or run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

cargo build --release -p siptoken-gateway --bin siptoken-gateway --example gateway_load

# The load tool kills Kamailio and the gateway when it ends or gets SIGTERM/SIGINT.
kill_background_on_exit
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--sessions 20000 --hold 600 --register-expires 60 --http2 1000 --kamailio-shm 1024)
target/release/examples/gateway_load --gateway target/release/siptoken-gateway "${args[@]}" &
pid=$!
wait "$pid"
