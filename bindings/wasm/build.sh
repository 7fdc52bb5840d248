#!/usr/bin/env bash
# Builds the npm package `siptoken` (WebAssembly over the core library) into bindings/wasm/pkg/.
#
# Installs what it needs on a fresh Debian 12 machine, idempotently: Debian's rustc-web (the
# rustup toolchains here have no wasm32 target; rustc-web rebuilds std from rust-web-src with
# -Z build-std), lld-22 (wasm-ld), and wasm-bindgen-cli at exactly the wasm-bindgen version of
# Cargo.lock (built once with the rustup toolchain, then reused from ~/.cargo/bin), and binaryen
# (wasm-opt) to shrink the result.
#
# Cached: cargo rebuilds only what changed, and pkg/ is regenerated only when the .wasm or the
# package template (npm/) changed. Safe to run again at any time.
#
#   bindings/wasm/build.sh           build (or confirm up to date) pkg/
#   bindings/wasm/build.sh --force   regenerate pkg/ even when up to date
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/scripts/lib.sh" # need_apt; puts ~/.cargo/bin on PATH
cd "$here"

force=0
[ "${1:-}" = "--force" ] && force=1

# --- tools ---------------------------------------------------------------------------------------
need_apt rustc-web cargo-web rust-web-src lld-22 binaryen
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "build.sh: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

# Debian's compiler and cargo, not rustup's proxies (which would ask for a wasm32 rust-std).
wasm_cargo() {
  env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
    /usr/bin/cargo "$@"
}

[ -f Cargo.lock ] || wasm_cargo generate-lockfile
bindgen_version=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
[ -n "$bindgen_version" ] || { echo "build.sh: no wasm-bindgen in Cargo.lock" >&2; exit 2; }
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]; then
  echo "installing wasm-bindgen-cli $bindgen_version (once; 2 to 5 minutes)"
  # A host tool: built with the rustup toolchain. Not --locked: its lockfile pins a crate version
  # that the registry here does not serve. It runs for a second per build, so it is compiled for
  # compile time (opt-level 1, no LTO, parallel codegen) rather than for its own speed.
  env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo install --quiet wasm-bindgen-cli --version "$bindgen_version"
fi

# --- the .wasm -----------------------------------------------------------------------------------
wasm_cargo build --release --target wasm32-unknown-unknown -Z build-std=std,panic_abort
wasm=target/wasm32-unknown-unknown/release/siptoken_wasm.wasm

# --- the package ---------------------------------------------------------------------------------
version=$(source "$root/scripts/lib.sh" && package_field version) # the workspace's, via cargo metadata
[ -n "$version" ] || { echo "build.sh: no version in $root/Cargo.toml" >&2; exit 2; }
stamp=$( (sha256sum "$wasm" npm/*; echo "$version $bindgen_version") | sha256sum | cut -c1-64)
if [ $force -eq 0 ] && [ -f pkg/.stamp ] && [ "$(cat pkg/.stamp)" = "$stamp" ]; then
  echo "pkg/ is up to date (siptoken $version)"
else
  tmp=target/pkg.tmp # assembled aside, then moved into place: pkg/ is never half-built
  rm -rf "$tmp"
  mkdir -p "$tmp"
  wasm-bindgen --target nodejs --no-typescript --out-dir "$tmp" "$wasm"
  # Size: binaryen's optimiser, with the features rustc 1.96 emits for wasm32 (and simd128).
  wasm-opt -Os --enable-bulk-memory --enable-multivalue --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-simd \
    "$tmp/siptoken_wasm_bg.wasm" -o "$tmp/siptoken_wasm_bg.opt.wasm"
  mv "$tmp/siptoken_wasm_bg.opt.wasm" "$tmp/siptoken_wasm_bg.wasm"
  cp npm/index.js npm/index.mjs npm/index.d.ts npm/index.d.mts npm/README.md "$tmp/"
  sed "s/@VERSION@/$version/" npm/package.json > "$tmp/package.json"
  echo "$stamp" > "$tmp/.stamp"
  rm -rf pkg
  mv "$tmp" pkg
  echo "built pkg/ (siptoken $version)"
fi

# Lets the tests in test/ load the package by its name, as users do (require('siptoken') and
# import 'siptoken' both go through package.json's "exports").
mkdir -p node_modules
ln -sfn ../pkg node_modules/siptoken

printf '.wasm size: %s bytes raw (cargo), %s bytes after wasm-bindgen and wasm-opt\n' \
  "$(stat -c %s "$wasm")" "$(stat -c %s pkg/siptoken_wasm_bg.wasm)"
