#!/usr/bin/env bash
# WASM package (bindings/wasm): build the npm package, run the node tests from CommonJS and ESM
# over every test vector, cross-check tokens with the CLI both ways, run the node:http example
# against real HTTP requests, and install the `npm pack` tarball into an empty directory and use
# it there (require, import, TypeScript types).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD

step "cargo fmt (bindings/wasm)" cargo fmt --manifest-path bindings/wasm/Cargo.toml -- --check
# On the host target: the binding's Rust is plain code over the core and js-sys.
step "cargo clippy (bindings/wasm)" cargo clippy --manifest-path bindings/wasm/Cargo.toml --all-targets -- -D warnings
step "build the npm package (bindings/wasm/build.sh)" bindings/wasm/build.sh

step "node --test: API and test vectors, through require and import" \
  node --test bindings/wasm/test/*.test.js bindings/wasm/test/*.test.mjs

# The debug build: stages 10 and 20 have built it already (same features), and speed does not
# matter for a few invocations.
step "siptoken CLI (cargo build)" cargo build -p siptoken-cli --bin siptoken
step "cross-check: WASM tokens verify with the CLI and CLI tokens with WASM" \
  env SIPTOKEN_BIN="$root/target/debug/siptoken" node --test bindings/wasm/test/cli-crosscheck.mjs

example() ( # a subshell: cd stays inside
  cd "$root/examples/node"
  npm install --no-package-lock --no-audit --no-fund --offline --silent # links the "file:" package
  node --test server.test.mjs
)
step "examples/node: token handler over real HTTP" example

pack_and_install() ( # a subshell: cd and the trap stay inside
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # Exactly the files the package needs: no build stamps, no sources.
  npm_pack_exactly bindings/wasm/pkg siptoken "$tmp" README.md index.d.mts index.d.ts index.js \
    index.mjs package.json siptoken_wasm.js siptoken_wasm_bg.wasm

  mkdir "$tmp/app"
  cd "$tmp/app"
  echo '{"name":"siptoken-pack-test","private":true}' > package.json
  # TypeScript and Node's typings only check the package's typings; they come from the npm
  # registry (then npm's cache).
  npm install --no-audit --no-fund --silent "$tarball" typescript@5 @types/node@20
  node -e '
    const assert = require("node:assert/strict");
    const { KeyRing, SipTokenError, issue, verify, version } = require("siptoken");
    assert.equal(version, process.argv[1]);
    const ring = KeyRing.parse("CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n");
    const token = issue(ring, "CRM", { login: "crm1", password: "pw", domain: "sip.example.org" });
    const r = verify(ring, token);
    assert.equal(r.valid, true);
    assert.equal(r.claims.password, "pw");
    assert.throws(() => KeyRing.parse("CRM=zz"), (e) => e instanceof SipTokenError && e.code === "invalid_keyring");
    assert.ok(require.resolve("siptoken").startsWith(process.cwd() + "/node_modules/siptoken/"));
    console.log("require(\"siptoken\") works from the installed tarball");
  ' "$version"
  node --input-type=module -e '
    import assert from "node:assert/strict";
    import siptoken, { KeyRing, issue, verify, version } from "siptoken";
    assert.equal(version, process.argv[1]);
    assert.equal(siptoken.verify, verify);
    const ring = KeyRing.parse("CRM=8263D535FFFFFFFF7B0F60\n");
    const token = issue(ring, "CRM", { login: "crm1", password: "pw", domain: "sipnet.ru", expires: 1764120300 }, { legacy: true });
    assert.equal(verify(ring, token, { allow_legacy: true, now: 1764120000 }).valid, true);
    assert.equal(verify(ring, token, { now: 1764120000 }).error, "legacy_disabled");
    console.log("import \"siptoken\" works from the installed tarball");
  ' "$version"
  cp "$root"/bindings/wasm/test/types/check.cts "$root"/bindings/wasm/test/types/check.mts .
  npx --no-install tsc --strict --noEmit --module node16 --moduleResolution node16 --target es2022 check.cts check.mts
  echo "TypeScript typings compile from CommonJS and ESM"
)
step "npm pack: install the tarball into an empty directory and use it" pack_and_install
