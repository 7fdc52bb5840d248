// The package loaded with import: named and default exports, the same instance as require(),
// and every file in tests/vectors/ through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import siptokenDefault, { KeyRing, SipTokenError, issue, verify, version } from 'siptoken';
import * as namespace from 'siptoken';
import support from './support/vectors.js';

const require = createRequire(import.meta.url);

test('import gives the same objects as require', () => {
  const cjs = require('siptoken');
  assert.equal(KeyRing, cjs.KeyRing);
  assert.equal(SipTokenError, cjs.SipTokenError);
  assert.equal(issue, cjs.issue);
  assert.equal(verify, cjs.verify);
  assert.equal(version, cjs.version);
  assert.equal(siptokenDefault, cjs);
  assert.deepEqual(Object.keys(namespace).sort(), ['KeyRing', 'SipTokenError', 'default', 'issue', 'verify', 'version']);
});

test('errors thrown through the ESM entry are SipTokenError', () => {
  assert.throws(() => KeyRing.parse('CRM=zz'), (e) => e instanceof SipTokenError && e.code === 'invalid_keyring');
});

support.registerVectorTests(test, namespace, 'import');
