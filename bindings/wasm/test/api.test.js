'use strict';
// The package's public API through require(): issue/verify round trips, the clock and randomness
// that come from JavaScript, errors and misuse, and an independent check of the token bytes with
// Node's own crypto.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { KeyRing, SipTokenError, issue, verify, version } = require('siptoken');

const ROOT = path.resolve(__dirname, '../../..');
const LEGACY_KEY = '8263D535FFFFFFFF7B0F60';
const K1 = '6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2';
const K2 = 'fe162ce2b39d1cd78bbb0f2bcd59ed2aedcbe4b0bf4e8675fd84581dd1eb3a35';
const RING_TEXT = `# test ring\nCRM=${LEGACY_KEY}\nCRM.k1=${K1}\nCRM.k2=${K2}\n\nV1ONLY.main=${K1}\n`;
const ring = KeyRing.parse(RING_TEXT);
const PASSWORD = `p<a&s"s'w>rd ü€ 密码\t\n`;
const CLAIMS = { login: 'crm1', password: PASSWORD, domain: 'sip.example.org', visibleName: 'Оператор 1', port: 5060 };
const nowSeconds = () => Math.floor(Date.now() / 1000);

function sipError(code) {
  return (e) => {
    assert.ok(e instanceof SipTokenError, `expected a SipTokenError, got ${e && e.name}: ${e && e.message}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'SipTokenError');
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes(PASSWORD) && !e.message.includes('s3cret'), 'no password in the message');
    assert.ok(!e.message.toLowerCase().includes(K1) && !e.message.includes(LEGACY_KEY), 'no key in the message');
    return true;
  };
}

test('version is the core version and the package version', () => {
  // The workspace version, as cargo itself reads it ([workspace.package] of the root Cargo.toml).
  const metadata = JSON.parse(require('node:child_process').execFileSync('cargo',
    ['metadata', '--no-deps', '--format-version', '1', '--manifest-path', path.join(ROOT, 'Cargo.toml')],
    { encoding: 'utf8' }));
  const coreVersion = metadata.packages.find((p) => p.name === 'siptoken').version;
  assert.equal(version, coreVersion);
  assert.equal(require('siptoken/package.json').version, coreVersion);
});

test('KeyRing.parse: apps, bad rings, wrong types', () => {
  assert.deepEqual(ring.apps(), ['CRM', 'V1ONLY']);
  assert.throws(() => KeyRing.parse(`CRM.k1=${K1}\nCRM.k2=${K1.slice(0, 10)}zz\n`), (e) => {
    sipError('invalid_keyring')(e);
    assert.match(e.message, /line 2/);
    assert.ok(!e.message.includes(K1.slice(0, 10)), 'key material is not echoed');
    return true;
  });
  assert.throws(() => KeyRing.parse('CRM.k1=00'), sipError('invalid_keyring'));
  assert.throws(() => KeyRing.parse(42), TypeError);
  assert.throws(() => KeyRing.parse(), TypeError);
  assert.throws(() => KeyRing.parse(Buffer.from(RING_TEXT)), TypeError);
});

test('v1: issue and verify round trip, with the clock and TTL from JavaScript', () => {
  const before = nowSeconds();
  const token = issue(ring, 'CRM', CLAIMS);
  const after = nowSeconds();
  assert.match(token, /^CRM:v1\.k2\.[0-9a-f]+$/, 'the newest key issues, lowercase hex');
  const r = verify(ring, token);
  assert.equal(r.valid, true, r.message);
  assert.equal(r.format, 'v1');
  assert.equal(r.app, 'CRM');
  assert.equal(r.kid, 'k2');
  assert.equal(r.claims.login, 'crm1');
  assert.equal(r.claims.password, PASSWORD, 'the password round-trips exactly');
  assert.equal(r.claims.visibleName, 'Оператор 1');
  assert.equal(r.claims.port, '5060');
  assert.match(r.claims.id, /^[0-9a-f]{32}$/);
  const issued = Number(r.claims.issued);
  assert.ok(issued >= before && issued <= after, `issued ${issued} is the current time`);
  assert.equal(Number(r.claims.expires) - issued, 300, 'the default TTL is 300 s');

  const short = verify(ring, issue(ring, 'CRM', { ...CLAIMS, ttl_seconds: 60 }));
  assert.equal(Number(short.claims.expires) - Number(short.claims.issued), 60);

  const explicit = verify(ring, issue(ring, 'CRM', { ...CLAIMS, expires: after + 1000 }));
  assert.equal(explicit.claims.expires, String(after + 1000));

  const byKid = issue(ring, 'CRM', CLAIMS, { kid: 'k1' });
  assert.ok(byKid.startsWith('CRM:v1.k1.'));
  assert.equal(verify(ring, byKid).kid, 'k1');
});

test('randomness comes from crypto.getRandomValues: tokens and ids differ', () => {
  const tokens = new Set();
  const ids = new Set();
  for (let i = 0; i < 50; i++) {
    const token = issue(ring, 'CRM', CLAIMS, { now: 1764120000 });
    tokens.add(token);
    ids.add(verify(ring, token, { now: 1764120000 }).claims.id);
    tokens.add(token.slice(0, 'CRM:v1.k2.'.length + 32)); // the nonce
  }
  assert.equal(tokens.size, 100, 'every token and every nonce is different');
  assert.equal(ids.size, 50, 'every id is different');
});

test('verify uses the current time unless now is given', () => {
  const old = nowSeconds() - 1000;
  const token = issue(ring, 'CRM', CLAIMS, { now: old });
  const late = verify(ring, token);
  assert.equal(late.valid, false);
  assert.equal(late.error, 'expired');
  assert.deepEqual(Object.keys(late), ['valid', 'error', 'message']);
  assert.equal(verify(ring, token, { now: old + 10 }).valid, true);
  assert.equal(verify(ring, token, { now: old + 300 + 30 }).valid, true, 'leeway 30 s by default');
  assert.equal(verify(ring, token, { now: old + 300 + 31 }).error, 'expired');
  assert.equal(verify(ring, token, { now: old + 300 + 40, leeway_seconds: 60 }).valid, true);
  assert.equal(verify(ring, token, { now: old - 31 }).error, 'not_yet_valid');
  const long = issue(ring, 'CRM', { ...CLAIMS, ttl_seconds: 7200 }, { now: old });
  assert.equal(verify(ring, long, { now: old, max_lifetime_seconds: 3600 }).error, 'lifetime_too_long');
});

test('legacy: deterministic, refused unless allowed, same bytes as Node crypto AES-128-CTR', () => {
  const claims = { login: 'crm1', password: 's3cret', domain: 'sipnet.ru', expires: 1764120300 };
  const token = issue(ring, 'CRM', claims, { legacy: true });
  assert.equal(issue(ring, 'CRM', claims, { legacy: true }), token, 'no random parts in legacy tokens');
  // Independently: Node's AES-128-CTR (zero IV, key zero-padded like `openssl enc -K`) over the
  // expected XML gives exactly these bytes.
  const key = Buffer.concat([Buffer.from(LEGACY_KEY, 'hex'), Buffer.alloc(16)]).subarray(0, 16);
  const xml = '<root login="crm1" password="s3cret" domain="sipnet.ru" expires="1764120300"/>';
  const cipher = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const hex = Buffer.concat([cipher.update(xml, 'utf8'), cipher.final()]).toString('hex');
  assert.equal(token, `CRM:${hex}`);

  assert.equal(verify(ring, token, { now: 1764120000 }).error, 'legacy_disabled');
  assert.deepEqual(verify(ring, token, { now: 1764120000, allow_legacy: true }), {
    valid: true,
    format: 'legacy',
    app: 'CRM',
    kid: null,
    claims: { login: 'crm1', password: 's3cret', domain: 'sipnet.ru', expires: '1764120300' },
  });
  assert.equal(verify(ring, token.toUpperCase().replace(/^CRM/, 'CRM'), { now: 1764120000, allow_legacy: true }).valid, true,
    'legacy hex of either case is accepted');
});

test('v1 token bytes check out with Node crypto (HMAC-SHA256, then AES-128-CTR)', () => {
  const token = issue(ring, 'CRM', CLAIMS, { kid: 'k1', now: 1764120000 });
  const m = /^(CRM:v1\.k1\.)([0-9a-f]+)$/.exec(token);
  assert.ok(m);
  const body = Buffer.from(m[2], 'hex');
  const key = Buffer.from(K1, 'hex');
  const nonce = body.subarray(0, 16);
  const ciphertext = body.subarray(16, body.length - 32);
  const tag = body.subarray(body.length - 32);
  const expected = crypto.createHmac('sha256', key.subarray(0, 16)).update(m[1]).update(nonce).update(ciphertext).digest();
  assert.ok(crypto.timingSafeEqual(tag, expected), 'the tag is HMAC-SHA256(sign_key, prefix ‖ nonce ‖ ciphertext)');
  const decipher = crypto.createDecipheriv('aes-128-ctr', key.subarray(16), nonce);
  const xml = Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  assert.match(xml, /login="crm1"/);
  assert.match(xml, /issued="1764120000"/);
  assert.match(xml, /expires="1764120300"/);
  assert.match(xml, /password="p&lt;a&amp;s&quot;s&apos;w&gt;rd ü€ 密码&#9;&#10;"/);
});

test('issue: the core refuses bad claims and options with SipTokenError codes', () => {
  const { password, ...noPassword } = CLAIMS;
  assert.throws(() => issue(ring, 'CRM', noPassword), sipError('missing_field'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, port: 70000 }), sipError('invalid_field'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, transport: 'sctp' }), sipError('invalid_field'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, ttl_seconds: -1 }), sipError('invalid_field'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, ttl_seconds: 'soon' }), sipError('invalid_field'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, port: 1.5 }), sipError('invalid_json'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, nested: { a: 1 } }), sipError('invalid_json'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, nothing: null }), sipError('invalid_json'));
  assert.throws(() => issue(ring, 'NOPE', CLAIMS), sipError('unknown_app'));
  assert.throws(() => issue(ring, 'V1ONLY', CLAIMS, { legacy: true }), sipError('unknown_key'));
  assert.throws(() => issue(ring, 'CRM', CLAIMS, { kid: 'k9' }), sipError('unknown_key'));
  assert.throws(() => issue(ring, 'CRM', CLAIMS, { legasy: true }), (e) => sipError('invalid_json')(e) && /legasy/.test(e.message));
  assert.throws(() => issue(ring, 'CRM', CLAIMS, { now: 'noon' }), sipError('invalid_json'));
  assert.throws(() => issue(ring, 'CRM', CLAIMS, { legacy: true, kid: 'k1' }), (e) => sipError('invalid_json')(e) && /kid/.test(e.message));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, visibleName: 'x'.repeat(9000) }), sipError('too_large'));
  assert.throws(() => issue(ring, 'CRM', { ...CLAIMS, expires: -5 }), sipError('invalid_field'));
});

test('misuse throws TypeError', () => {
  assert.throws(() => issue({}, 'CRM', CLAIMS), TypeError);
  assert.throws(() => issue(RING_TEXT, 'CRM', CLAIMS), TypeError);
  assert.throws(() => issue(ring, 42, CLAIMS), TypeError);
  assert.throws(() => issue(ring, 'CRM', null), TypeError);
  assert.throws(() => issue(ring, 'CRM', [CLAIMS]), TypeError);
  assert.throws(() => issue(ring, 'CRM', JSON.stringify(CLAIMS)), TypeError);
  assert.throws(() => issue(ring, 'CRM', CLAIMS, 'legacy'), TypeError);
  assert.throws(() => verify(undefined, 'CRM:00'), TypeError);
  assert.throws(() => verify(ring, 42), TypeError);
  assert.throws(() => verify(ring, Buffer.from('CRM:00')), TypeError);
  assert.throws(() => verify(ring, 'CRM:00', true), TypeError);
  assert.throws(() => verify(ring, 'CRM:00', { alow_legacy: true }), sipError('invalid_json'));
  assert.throws(() => verify(ring, 'CRM:00', { leeway_seconds: -1 }), sipError('invalid_json'));

  assert.throws(() => new KeyRing(), (e) => e instanceof TypeError && /KeyRing\.parse/.test(e.message));
  const freed = KeyRing.parse(RING_TEXT);
  freed.free();
  freed.free(); // harmless
  assert.throws(() => issue(freed, 'CRM', CLAIMS), TypeError);
  assert.throws(() => verify(freed, 'CRM:00'), TypeError);
});

test('rejected tokens are results, not exceptions', () => {
  const token = issue(ring, 'CRM', CLAIMS);
  const cases = [
    ['', 'malformed'],
    ['CRM', 'malformed'],
    ['nonsense', 'malformed'],
    ['CRM:v1.k2.zz', 'malformed'],
    ['OTHER:v1.k1.' + '00'.repeat(64), 'unknown_app'],
    ['CRM:v1.k7.' + '00'.repeat(64), 'unknown_key'],
    [token.slice(0, -2) + (token.endsWith('00') ? '01' : '00'), 'bad_signature'],
    ['CRM:' + 'a'.repeat(20000), 'too_large'],
    ['CRM:00', 'legacy_disabled'],
  ];
  for (const [bad, code] of cases) {
    const r = verify(ring, bad);
    assert.equal(r.valid, false, bad.slice(0, 40));
    assert.equal(r.error, code, `${bad.slice(0, 40)}: ${r.message}`);
  }
});

test('over-long tokens are refused without growing WebAssembly memory', () => {
  // The raw wasm-bindgen module beside index.js (the same instance the package uses).
  const raw = require(path.join(path.dirname(require.resolve('siptoken')), 'siptoken_wasm.js'));
  const before = raw.__memoryBytes();
  assert.ok(before > 0);
  const huge = 'CRM:' + 'ab'.repeat(8 * 1024 * 1024); // 16 MiB
  const r = verify(ring, huge);
  assert.deepEqual(Object.keys(r), ['valid', 'error', 'message']);
  assert.equal(r.error, 'too_large');
  assert.match(r.message, new RegExp(`${huge.length} bytes`));
  assert.equal(raw.__memoryBytes(), before, 'the 16 MiB token was not copied into WebAssembly memory');
  // Multi-byte characters count as their UTF-8 bytes, as in the core.
  assert.match(verify(ring, 'CRM:' + '€'.repeat(5000)).message, /15004 bytes/);
  // Right at the limit the core itself decides; just over it, the same answer as the core.
  assert.equal(verify(ring, 'CRM:' + '0'.repeat(8188)).error, 'legacy_disabled');
  assert.equal(verify(ring, 'CRM:' + '0'.repeat(8189)).error, 'too_large');
  assert.equal(raw.verifyToken(ring, 'CRM:' + '0'.repeat(8189), '{}'), JSON.stringify(verify(ring, 'CRM:' + '0'.repeat(8189))));
  assert.throws(() => verify(ring, huge, { alow_legacy: true }), sipError('invalid_json'));
});

test('arbitrary input never crashes the WebAssembly instance', () => {
  // A Rust panic would abort the instance and every later call would fail; this runs a few
  // thousand mutated tokens and arbitrary strings, then checks the instance still works.
  const token = issue(ring, 'CRM', CLAIMS, { now: 1764120000 });
  const legacy = issue(ring, 'CRM', { ...CLAIMS, expires: 1764120300 }, { legacy: true });
  const alphabet = 'CRM:v1.k20123456789abcdefABCDEF\u0000\u00ff€<&"\'';
  let seed = 12345;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    const source = i % 2 ? token : legacy;
    let s;
    if (i % 3 === 0) {
      const at = rand(source.length);
      s = source.slice(0, at) + alphabet[rand(alphabet.length)] + source.slice(at + 1);
    } else if (i % 3 === 1) {
      s = source.slice(0, rand(source.length));
    } else {
      s = Array.from({ length: rand(80) }, () => alphabet[rand(alphabet.length)]).join('');
    }
    const r = verify(ring, s, { allow_legacy: true, now: 1764120000 });
    assert.equal(typeof r.valid, 'boolean');
    if (!r.valid) assert.equal(typeof r.error, 'string');
  }
  assert.equal(verify(ring, token, { now: 1764120000 }).valid, true, 'the instance still works');
});
