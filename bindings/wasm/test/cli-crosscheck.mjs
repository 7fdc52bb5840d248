// Tokens issued by the WASM package verify with the `siptoken` CLI and the other way round, with
// the same JSON result; legacy tokens are byte-identical between the two.
//
//   SIPTOKEN_BIN=target/release/siptoken node --test bindings/wasm/test/cli-crosscheck.mjs
//
// (Run by scripts/ci/30-wasm.sh after `cargo build --release --bin siptoken`; it fails, rather
// than skips, when the binary is missing.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeyRing, issue, verify } from 'siptoken';

const BIN = process.env.SIPTOKEN_BIN;
const NOW = 1764120000;
const RING_TEXT = [
  '# cross-check ring',
  'CRM=8263D535FFFFFFFF7B0F60',
  'CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2',
  'CRM.k2=fe162ce2b39d1cd78bbb0f2bcd59ed2aedcbe4b0bf4e8675fd84581dd1eb3a35',
  '',
].join('\n');
const PASSWORD = `p<a&s"s'w>rd ü€ 密码`;
let dir;
let keys;
const ring = KeyRing.parse(RING_TEXT);

before(() => {
  assert.ok(BIN, 'set SIPTOKEN_BIN to the siptoken CLI binary');
  assert.ok(fs.existsSync(BIN), `no CLI binary at ${BIN}`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siptoken-crosscheck-'));
  keys = path.join(dir, 'keys.conf');
  fs.writeFileSync(keys, RING_TEXT, { mode: 0o600 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `siptoken verify --json --show-password`: the parsed object and the exit status. */
function cliVerify(token, now = NOW) {
  const r = spawnSync(BIN, ['verify', '--keys', keys, '--allow-legacy', '--json', '--show-password', '--now', String(now), token], {
    encoding: 'utf8',
  });
  assert.equal(r.error, undefined);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `exactly one JSON line: ${r.stdout} ${r.stderr}`);
  return { status: r.status, json: JSON.parse(lines[0]) };
}

function cliIssue(args, password) {
  return execFileSync(BIN, ['issue', '--keys', keys, '--app', 'CRM', ...args], { input: password, encoding: 'utf8' }).trim();
}

const CASES = [
  ['v1, newest key', { login: 'crm1', password: PASSWORD, domain: 'sip.example.org' }, {}],
  [
    'v1, every attribute and an unknown one',
    {
      login: 'crm1',
      password: PASSWORD,
      domain: 'sip.example.org',
      authenticationName: 'auth1',
      outboundProxy: 'proxy.example.org',
      port: 5061,
      visibleName: 'Оператор "1" <ops>',
      transport: 'tls',
      registered: false,
      'x-crm-user': '42',
      ttl_seconds: 120,
    },
    { kid: 'k1' },
  ],
  ['legacy', { login: 'crm1', password: PASSWORD, domain: 'sipnet.ru', expires: NOW + 300 }, { legacy: true }],
];

for (const [name, claims, options] of CASES) {
  test(`WASM-issued token verifies with the CLI: ${name}`, () => {
    const token = issue(ring, 'CRM', claims, { ...options, now: NOW });
    const mine = verify(ring, token, { allow_legacy: true, now: NOW });
    assert.equal(mine.valid, true, mine.message);
    const cli = cliVerify(token);
    assert.equal(cli.status, 0);
    assert.deepStrictEqual(cli.json, mine);
    assert.equal(cli.json.claims.password, PASSWORD);

    // A rejection is reported the same way by both.
    const flipped = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
    const cliBad = cliVerify(flipped);
    assert.equal(cliBad.status, 1);
    assert.deepStrictEqual(cliBad.json, verify(ring, flipped, { allow_legacy: true, now: NOW }));
    const cliLate = cliVerify(token, NOW + 10000);
    assert.equal(cliLate.json.error, 'expired');
    assert.deepStrictEqual(cliLate.json, verify(ring, token, { allow_legacy: true, now: NOW + 10000 }));
  });
}

test('CLI-issued v1 token verifies with the WASM package', () => {
  const token = cliIssue(
    ['--login', 'crm1', '--domain', 'sip.example.org', '--password-stdin', '--visible-name', 'Оператор 1', '--port', '5060',
      '--transport', 'udp', '--claim', 'x-crm-user=42', '--ttl', '5m', '--now', String(NOW)],
    PASSWORD,
  );
  assert.match(token, /^CRM:v1\.k2\.[0-9a-f]+$/);
  const mine = verify(ring, token, { allow_legacy: true, now: NOW });
  assert.equal(mine.valid, true, mine.message);
  assert.equal(mine.claims.password, PASSWORD);
  assert.equal(mine.claims['x-crm-user'], '42');
  assert.equal(mine.claims.expires, String(NOW + 300));
  assert.deepStrictEqual(mine, cliVerify(token).json);
});

test('CLI-issued legacy token verifies with the WASM package, and both issue the same bytes', () => {
  const token = cliIssue(
    ['--login', 'crm1', '--domain', 'sipnet.ru', '--password-stdin', '--legacy', '--ttl', '5m', '--now', String(NOW)],
    PASSWORD,
  );
  const mine = verify(ring, token, { allow_legacy: true, now: NOW });
  assert.equal(mine.valid, true, mine.message);
  assert.equal(mine.format, 'legacy');
  assert.deepStrictEqual(mine, cliVerify(token).json);
  const again = issue(ring, 'CRM', { login: 'crm1', password: PASSWORD, domain: 'sipnet.ru' }, { legacy: true, now: NOW });
  assert.equal(again, token, 'legacy tokens are deterministic and identical between the CLI and the package');
});

test('CLI --batch tokens verify with the WASM package', () => {
  const lines = [
    { login: 'a1', password: 'pw1', domain: 'sip.example.org', ttl_seconds: 60 },
    { login: 'a2', password: PASSWORD, domain: 'sip.example.org', port: 5060, expires: NOW + 900 },
  ];
  const out = execFileSync(BIN, ['issue', '--keys', keys, '--app', 'CRM', '--now', String(NOW), '--batch', '-'], {
    input: lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
    encoding: 'utf8',
  });
  const tokens = out.trim().split('\n');
  assert.equal(tokens.length, 2);
  const [a, b] = tokens.map((t) => verify(ring, t, { now: NOW }));
  assert.equal(a.valid && b.valid, true);
  assert.equal(a.claims.expires, String(NOW + 60));
  assert.equal(b.claims.password, PASSWORD);
  assert.equal(b.claims.expires, String(NOW + 900));
});
