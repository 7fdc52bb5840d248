#!/usr/bin/env bash
# Assembles the npm package `siptoken-phone` (the browser SDK) into bindings/browser/pkg/: the ES
# module and its TypeScript declarations as written in src/ (no build step: the gateway serves
# the same file), this directory's README.md, and package.json with the workspace's version
# (root Cargo.toml, read through cargo metadata). Safe to run again at any time.
#
#   bindings/browser/build.sh                 assemble pkg/
#   bindings/browser/build.sh --size ESBUILD  also print the minified+gzipped size and fail above
#                                             15 KiB (ESBUILD: the esbuild binary, a dev tool)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
esbuild=
if [ "${1:-}" = "--size" ]; then
  esbuild=$(realpath "${2:?"--size needs the esbuild binary"}")
fi
cd "$here"

version=$(source "$root/scripts/lib.sh" && package_field version)
[ -n "$version" ] || { echo "build.sh: no version in $root/Cargo.toml" >&2; exit 2; }

tmp=pkg.tmp # assembled aside, then moved into place: pkg/ is never half-built
rm -rf "$tmp"
mkdir "$tmp"
cp src/siptoken-phone.js src/siptoken-phone.d.ts README.md "$tmp/"
sed "s/@VERSION@/$version/" package.json > "$tmp/package.json"
rm -rf pkg
mv "$tmp" pkg
echo "built bindings/browser/pkg/ (siptoken-phone $version)"

if [ -n "$esbuild" ]; then
  limit=15360
  min=$("$esbuild" --minify --format=esm --target=es2022 --log-level=warning pkg/siptoken-phone.js | wc -c)
  gz=$("$esbuild" --minify --format=esm --target=es2022 --log-level=warning pkg/siptoken-phone.js | gzip -9 | wc -c)
  echo "siptoken-phone.js: $(wc -c < pkg/siptoken-phone.js) bytes source, $min minified, $gz minified+gzipped (limit $limit)"
  [ "$gz" -le "$limit" ] || { echo "build.sh: $gz bytes minified+gzipped is above the $limit-byte limit" >&2; exit 1; }
fi
