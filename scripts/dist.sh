#!/usr/bin/env bash
# Builds the distributable artifacts into target/dist/, every version taken from the root
# Cargo.toml (the npm package's package.json is generated from it by bindings/wasm/build.sh; the
# Python package's pyproject.toml and the C library's Cargo.toml are checked against it here, so
# a release cannot ship two versions):
#
#   deb     siptoken_VERSION-1_ARCH.deb        cargo-deb; layout in Cargo.toml [package.metadata.deb]
#   npm     siptoken-VERSION.tgz               bindings/wasm/build.sh, then npm pack
#           siptoken-phone-VERSION.tgz         the browser SDK: bindings/browser/build.sh, then npm pack
#   python  siptoken-VERSION.tar.gz, siptoken-VERSION-py3-none-any.whl   (python -m build)
#
#   scripts/dist.sh                  all three
#   scripts/dist.sh deb python       only these
#
# Installs what it needs (dpkg-dev, cargo-deb from crates.io at a pinned version — skipped when
# that version is on PATH —, PyPI's `build`), idempotently. Reuses target/ from earlier builds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
root=$PWD

CARGO_DEB_VERSION=3.8.0
out=$root/target/dist

version=$(package_field version)
[ -n "$version" ] || { echo "dist.sh: no version in Cargo.toml" >&2; exit 2; }

check_versions() {
  local crate py ok=0
  for crate in siptoken-cli siptoken-gateway siptoken-ffi; do
    [ "$(package_field version $crate)" = "$version" ] || { echo "dist.sh: $crate does not take the workspace version $version" >&2; ok=1; }
  done
  py=$(sed -n 's/^version *= *"\(.*\)"/\1/p' bindings/python/pyproject.toml | head -1)
  [ "$py" = "$version" ] || { echo "dist.sh: bindings/python/pyproject.toml has version $py, Cargo.toml $version" >&2; ok=1; }
  return $ok
}

build_deb() {
  need_apt dpkg-dev
  if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "installing cargo-deb $CARGO_DEB_VERSION (once; about 2 minutes)"
    cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
  fi
  # What the package ships, built by us (cargo deb --no-build): both binaries (default features)
  # and the C library.
  cargo build --release -p siptoken-cli -p siptoken-gateway -p siptoken-ffi

  # Generated at build time, never committed: completions from the binary, siptoken.pc.
  local staging=target/deb-staging
  rm -rf "$staging"
  mkdir -p "$staging/completions"
  target/release/siptoken completions bash > "$staging/completions/siptoken.bash"
  target/release/siptoken completions zsh > "$staging/completions/_siptoken"
  target/release/siptoken completions fish > "$staging/completions/siptoken.fish"
  sed "s/@VERSION@/$version/" packaging/siptoken.pc.in > "$staging/siptoken.pc"

  mkdir -p "$out"
  rm -f "$out"/siptoken_*.deb
  cargo deb --no-build -p siptoken --output "$out/"
  ls -l "$out"/siptoken_"$version"-*.deb
}

build_npm() {
  bindings/wasm/build.sh
  local pv
  pv=$(node -p 'require("./bindings/wasm/pkg/package.json").version')
  [ "$pv" = "$version" ] || { echo "dist.sh: bindings/wasm/pkg has version $pv, Cargo.toml $version" >&2; return 1; }
  mkdir -p "$out"
  rm -f "$out"/siptoken-[0-9]*.tgz
  (cd bindings/wasm/pkg && npm pack --silent --pack-destination "$out" >/dev/null)
  ls -l "$out/siptoken-$version.tgz"

  bindings/browser/build.sh
  pv=$(node -p 'require("./bindings/browser/pkg/package.json").version')
  [ "$pv" = "$version" ] || { echo "dist.sh: bindings/browser/pkg has version $pv, Cargo.toml $version" >&2; return 1; }
  rm -f "$out"/siptoken-phone-*.tgz
  (cd bindings/browser/pkg && npm pack --silent --pack-destination "$out" >/dev/null)
  ls -l "$out/siptoken-phone-$version.tgz"
}

build_python() {
  need_apt python3-venv python3-pip
  need_pip build build
  # From a copy: setuptools writes build/ and *.egg-info next to the sources.
  local tmp
  tmp=$(mktemp -d)
  cp -r bindings/python "$tmp/python"
  rm -rf "$tmp/python/build" "$tmp/python"/*.egg-info
  mkdir -p "$out"
  rm -f "$out"/siptoken-*.tar.gz "$out"/siptoken-*.whl
  python3 -m build --sdist --wheel --outdir "$out" "$tmp/python" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  ls -l "$out/siptoken-$version.tar.gz" "$out/siptoken-$version-py3-none-any.whl"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(deb npm python)
step "versions agree with Cargo.toml ($version)" check_versions
for t in "${targets[@]}"; do
  case $t in
    deb) step "dist: Debian package" build_deb ;;
    npm) step "dist: npm tarball" build_npm ;;
    python) step "dist: Python sdist and wheel" build_python ;;
    *) echo "dist.sh: unknown target $t (deb, npm, python)" >&2; exit 2 ;;
  esac
done
