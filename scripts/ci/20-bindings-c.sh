#!/usr/bin/env bash
# C ABI (bindings/c) and the PHP (FFI) and Python (ctypes) bindings over it: builds
# libsiptoken.so/.a, runs the C tests and the C example under valgrind, the PHP and Python
# suites (every file in tests/vectors/, NULL and invalid UTF-8 for every function, 8 threads on
# one key ring), installs the Python package with pip, and runs the PHP and Python examples.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD

need_apt php8.2-cli valgrind libjansson-dev make openssl g++

lib=$root/target/release/libsiptoken.so
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SIPTOKEN_LIB=$lib SIPTOKEN_HEADER=$root/bindings/c/include/siptoken.h
vg=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect)

step "build libsiptoken (release)" cargo build --release -p siptoken-ffi
step "build the siptoken CLI (for comparisons)" cargo build -p siptoken-cli --bin siptoken
ls -l "$lib" "$root/target/release/libsiptoken.a"
step "Rust unit tests of the ABI (header up to date, codes, NULL, UTF-8, panics)" cargo test -p siptoken-ffi

header_compiles() {
  printf '#include "siptoken.h"\nint siptoken_header_check;\n' > "$work/h.c"
  gcc -std=c99 -pedantic -Wall -Wextra -Werror -I bindings/c/include -c "$work/h.c" -o "$work/h.o"
  g++ -std=c++11 -x c++ -Wall -Wextra -Werror -I bindings/c/include -c "$work/h.c" -o "$work/hpp.o"
}
step "the header compiles as C99 (pedantic) and as C++11" header_compiles
step "build the C tests" cc -std=c11 -O1 -g -Wall -Wextra -Werror -I bindings/c/include \
  bindings/c/tests/abi_test.c -L target/release -lsiptoken -ljansson -lpthread \
  -Wl,-rpath,"$root/target/release" -o "$work/abi_test"
step "C tests under valgrind (vectors, NULL/UTF-8, key ring files, 8 pthreads)" \
  "${vg[@]}" "$work/abi_test" tests/vectors 50
step "C tests under helgrind (no data races between the 8 threads)" \
  valgrind -q --tool=helgrind --error-exitcode=1 "$work/abi_test" tests/vectors 20
step "C tests natively, more rounds" "$work/abi_test" tests/vectors 2000

step "build the C example (shared and static)" make -s -C examples/c
printf 'CRM.k1=%s\nCRM=8263D535FFFFFFFF7B0F60\n' "$(openssl rand -hex 32)" > "$work/keys.conf"
chmod 600 "$work/keys.conf"
c_example() {
  local bin=$1 token
  token=$(printf 'pa"ss<&>\n' | SIPTOKEN_KEYS=$work/keys.conf "${vg[@]}" "examples/c/$bin" CRM crm1 sip.example.org)
  # The CLI accepts what the C example issued.
  target/debug/siptoken verify --keys "$work/keys.conf" --json "$token" | grep -q '"login":"crm1"'
}
step "C example under valgrind (shared library)" c_example issue_verify
step "C example under valgrind (static library)" c_example issue_verify_static

step "PHP tests (vectors, errors, NULL through FFI)" php bindings/php/tests/run.php tests/vectors
step "PHP example" env SIPTOKEN_KEYS="$work/keys.conf" php examples/php/crm_token.php

python_install() {
  python3 -m venv "$work/venv" 2>/dev/null || { need_apt python3-venv && python3 -m venv "$work/venv"; }
  # From a copy: setuptools writes build/ and *.egg-info next to the sources.
  cp -r bindings/python "$work/python-src"
  "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work/python-src"
  # The tests must import the installed package, not the source tree.
  (cd "$work" && "$work/venv/bin/python" -c 'import siptoken, sys; print("installed:", siptoken.__file__, siptoken.version()); sys.exit("site-packages" not in siptoken.__file__)')
}
step "pip install bindings/python (into a venv)" python_install
python_tests() {
  (cd "$work" && SIPTOKEN_CLI=$root/target/debug/siptoken SIPTOKEN_VECTORS=$root/tests/vectors \
    "$work/venv/bin/python" -W error -m unittest discover -s "$root/bindings/python/tests" -v)
}
step "Python tests (vectors, byte-for-byte with the CLI, errors, 8 threads)" python_tests
step "Python example" env SIPTOKEN_KEYS="$work/keys.conf" "$work/venv/bin/python" examples/python/crm_token.py
