#!/usr/bin/env bash
# Browser SDK (issue 15, bindings/browser: npm package siptoken-phone): unit tests against a
# scripted gateway and fake WebRTC (node --test, mock timers), the size limit (15 KB minified and
# gzipped, measured with esbuild), and the packed tarball installed into an empty project, where
# it is imported and a consumer is type-checked with `tsc --strict` (bundler and node16 module
# resolution). Dev tools (esbuild, TypeScript) come from npm into target/browser-node, once.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD

command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm
node_dir=$root/target/browser-node
ESBUILD_VERSION=0.25.12
TYPESCRIPT_VERSION=5.9.3
dev_tools() {
  mkdir -p "$node_dir"
  [ -f "$node_dir/package.json" ] || echo '{"private":true}' >"$node_dir/package.json"
  if [ "$(node -p "try { require('$node_dir/node_modules/esbuild/package.json').version } catch { '' }")" != "$ESBUILD_VERSION" ] ||
    [ "$(node -p "try { require('$node_dir/node_modules/typescript/package.json').version } catch { '' }")" != "$TYPESCRIPT_VERSION" ]; then
    npm install --prefix "$node_dir" --no-audit --no-fund --silent "esbuild@$ESBUILD_VERSION" "typescript@$TYPESCRIPT_VERSION"
  fi
}
step "dev tools: esbuild $ESBUILD_VERSION, TypeScript $TYPESCRIPT_VERSION (target/browser-node)" dev_tools

step "node --test: the SDK against a scripted gateway and fake WebRTC" \
  node --test bindings/browser/test/*.test.mjs

step "build bindings/browser/pkg; size minified+gzipped within 15 KB" \
  bindings/browser/build.sh --size "$node_dir/node_modules/.bin/esbuild"

pack_and_install() ( # a subshell: cd and the trap stay inside
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # Exactly the files the package needs.
  npm_pack_exactly bindings/browser/pkg siptoken-phone "$tmp" README.md package.json \
    siptoken-phone.d.ts siptoken-phone.js

  mkdir "$tmp/app"
  cd "$tmp/app"
  echo '{"name":"siptoken-phone-pack-test","private":true,"type":"module"}' > package.json
  npm install --no-audit --no-fund --silent --offline "$tarball"
  # No runtime dependencies: the tarball is all that was installed.
  [ "$(ls node_modules | grep -v '^\.' | tr '\n' ' ')" = "siptoken-phone " ]
  node -e '
    import("siptoken-phone").then(({ Phone, PhoneError, Call }) => {
      const assert = require("node:assert/strict");
      assert.equal(typeof Phone, "function");
      assert.equal(typeof Call, "function");
      const e = new PhoneError("busy", "busy", { sipStatus: 486 });
      assert.ok(e instanceof Error && e.code === "busy" && e.sipStatus === 486);
      assert.throws(() => new Phone({}), TypeError);
      console.log("import(\"siptoken-phone\") works from the installed tarball");
    });
  '
  cp "$root/bindings/browser/test/types/consumer.mts" .
  tsc=$node_dir/node_modules/.bin/tsc
  "$tsc" --strict --noEmit --target es2022 --lib es2022,dom --module esnext --moduleResolution bundler consumer.mts
  "$tsc" --strict --noEmit --target es2022 --lib es2022,dom --module node16 --moduleResolution node16 consumer.mts
  echo "a consumer type-checks with tsc --strict (moduleResolution bundler and node16)"
)
step "npm pack: install the tarball into an empty project, import it, tsc --strict a consumer" pack_and_install
