#!/usr/bin/env bash
# Issue and verify per call through the C ABI from PHP (FFI) and Python (ctypes), side by side
# with the same v1 work done natively in each language, in the same run; prints medians and
# ratios (below 1: the binding is faster). Not a CI test (timings are not assertions); the
# numbers are recorded in docs/performance.md.
#
#   benches/bindings/compare.sh [ITERATIONS] [ROUNDS]      (default 20000 calls x 7 rounds)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt php8.2-cli php8.2-xml
need_pip cryptography cryptography

n=${1:-20000}
rounds=${2:-7}
cargo build --quiet --release -p siptoken-ffi
export SIPTOKEN_LIB=$PWD/target/release/libsiptoken.so
export SIPTOKEN_HEADER=$PWD/bindings/c/include/siptoken.h

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(uname -sr)"
stripped=$(mktemp)
strip -o "$stripped" "$SIPTOKEN_LIB"
echo "library: libsiptoken.so $(stat -c %s "$SIPTOKEN_LIB") bytes ($(stat -c %s "$stripped") stripped), release profile"
rm -f "$stripped"
echo "command: benches/bindings/compare.sh $n $rounds"
echo
bench_c=$(mktemp)
cc -std=c11 -O2 -I bindings/c/include benches/bindings/bench.c -L target/release -lsiptoken \
  -Wl,-rpath,"$PWD/target/release" -o "$bench_c"
"$bench_c" "$n" "$rounds"
rm -f "$bench_c"
echo
php benches/bindings/bench.php "$n" "$rounds"
echo
PYTHONPATH=bindings/python python3 benches/bindings/bench.py "$n" "$rounds"
