'use strict';
// The shared test vectors (tests/vectors/*.json at the repository root) run through the package.
// Used by vectors.test.js (through require) and esm.test.mjs (through import), so both entry
// points are checked against every vector file.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const VECTOR_DIR = path.resolve(__dirname, '../../../../tests/vectors');

function vectorFiles() {
  const files = fs
    .readdirSync(VECTOR_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(VECTOR_DIR, f));
  // The independent vectors and the project's own: a missing directory must fail, not pass.
  assert.ok(files.length >= 2, `expected at least 2 vector files in ${VECTOR_DIR}, found ${files.length}`);
  return files.map((file) => ({ file, name: path.basename(file), data: JSON.parse(fs.readFileSync(file, 'utf8')) }));
}

/** Registers one test per vector file (with a subtest per vector) for the given package object. */
function registerVectorTests(test, siptoken, label) {
  const { KeyRing, issue, verify } = siptoken;
  for (const { name, data } of vectorFiles()) {
    test(`${label}: ${name}`, async (t) => {
      assert.ok(data.valid.length > 0 && data.invalid.length > 0, `${name} has valid and invalid vectors`);
      const ring = KeyRing.parse(data.keyring);
      const base = { leeway_seconds: data.leeway_seconds, max_lifetime_seconds: data.max_lifetime_seconds, now: data.now };

      for (const v of data.valid) {
        await t.test(`valid: ${v.name}`, () => {
          const expected = { valid: true, format: v.format, app: v.app, kid: v.kid ?? null, claims: v.claims };
          assert.deepStrictEqual(verify(ring, v.token, { ...base, allow_legacy: true }), expected);
          if (v.format === 'legacy') {
            const r = verify(ring, v.token, { ...base, allow_legacy: false });
            assert.equal(r.valid, false);
            assert.equal(r.error, 'legacy_disabled');
          } else {
            // v1 is accepted whatever allow_legacy says.
            assert.deepStrictEqual(verify(ring, v.token, base), expected);
          }

          // Issue the same claims again through the package and verify the result: the claims
          // come back exactly, in the same format, under the same key.
          const options = v.format === 'legacy' ? { legacy: true, now: data.now } : { kid: v.kid, now: data.now };
          const again = issue(ring, v.app, v.claims, options);
          const prefix = v.format === 'legacy' ? `${v.app}:` : `${v.app}:v1.${v.kid}.`;
          assert.ok(again.startsWith(prefix), `re-issued token starts with ${prefix}`);
          assert.deepStrictEqual(verify(ring, again, { ...base, allow_legacy: true }), expected);
          if (v.format === 'v1') assert.notEqual(again, v.token, 'a v1 token gets a fresh nonce');
        });
      }

      for (const v of data.invalid) {
        await t.test(`invalid: ${v.name}`, () => {
          const r = verify(ring, v.token, { ...base, allow_legacy: v.allow_legacy });
          assert.deepStrictEqual(Object.keys(r), ['valid', 'error', 'message']);
          assert.equal(r.valid, false);
          assert.equal(r.error, v.error, r.message);
          assert.equal(typeof r.message, 'string');
          assert.ok(r.message.length > 0);
        });
      }
    });
  }
}

module.exports = { registerVectorTests, vectorFiles, VECTOR_DIR };
