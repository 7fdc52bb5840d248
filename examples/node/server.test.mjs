// Runs server.js as a real process and talks to it over HTTP: log in, fetch a token, check the
// token with the siptoken package, and check that nothing secret reaches the logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyRing, verify } from 'siptoken';

const here = path.dirname(fileURLToPath(import.meta.url));
const RING_TEXT = 'CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n';
const operators = JSON.parse(fs.readFileSync(path.join(here, 'operators.example.json'), 'utf8'));
const alice = operators.find((o) => o.username === 'alice');
let dir;
let server;
let base;
let output = '';

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'siptoken-example-'));
  const keys = path.join(dir, 'keys.conf');
  fs.writeFileSync(keys, RING_TEXT, { mode: 0o600 });
  server = spawn(process.execPath, [path.join(here, 'server.js')], {
    env: { ...process.env, SIPTOKEN_KEYS: keys, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => (output += d));
  server.stderr.on('data', (d) => (output += d));
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 10000);
    server.stdout.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
});

after(() => {
  server.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
});

const post = (p, body, headers = {}) =>
  fetch(base + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

test('a logged-in operator gets a token for their SIP account', async () => {
  const login = await post('/login', { username: 'alice', password: 'alice-crm-password' });
  assert.equal(login.status, 204);
  const cookie = login.headers.get('set-cookie');
  assert.match(cookie, /^sid=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict/);
  const sid = cookie.split(';')[0];

  const before = Math.floor(Date.now() / 1000);
  const res = await post('/sip-token', undefined, { cookie: sid });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const { token, expires } = await res.json();
  assert.match(token, /^CRM:v1\.k1\.[0-9a-f]+$/);
  const afterwards = Math.floor(Date.now() / 1000);
  assert.ok(expires >= before + 300 && expires <= afterwards + 300, `expires ${expires} is 300 s after the request`);

  const result = verify(KeyRing.parse(RING_TEXT), token);
  assert.equal(result.valid, true, result.message);
  assert.deepEqual(
    { ...result.claims, issued: undefined, id: undefined },
    { ...Object.fromEntries(Object.entries(alice.sip).map(([k, v]) => [k, String(v)])), expires: String(expires), issued: undefined, id: undefined },
  );

  // Each request gets a fresh token.
  const again = await (await post('/sip-token', undefined, { cookie: sid })).json();
  assert.notEqual(again.token, token);

  // After logout the session is gone.
  assert.equal((await post('/logout', undefined, { cookie: sid })).status, 204);
  assert.equal((await post('/sip-token', undefined, { cookie: sid })).status, 401);
});

test('no token without a valid login', async () => {
  assert.equal((await post('/sip-token')).status, 401);
  assert.equal((await post('/sip-token', undefined, { cookie: 'sid=' + '0'.repeat(64) })).status, 401);
  assert.equal((await post('/login', { username: 'alice', password: 'wrong' })).status, 401);
  assert.equal((await post('/login', { username: 'mallory', password: 'alice-crm-password' })).status, 401);
  assert.equal((await post('/login', { username: 'alice' })).status, 400);
  assert.equal((await fetch(base + '/login', { method: 'POST', body: 'not json' })).status, 400);
  assert.equal((await fetch(base + '/sip-token')).status, 405);
  assert.equal((await post('/elsewhere')).status, 404);
  assert.equal((await post('/login', { username: 'x'.repeat(10000), password: 'y' })).status, 413);
});

test('the server logs no SIP password, token or session id', async () => {
  const login = await post('/login', { username: 'bob', password: 'bob-crm-password' });
  const sid = login.headers.get('set-cookie').split(';')[0];
  const { token } = await (await post('/sip-token', undefined, { cookie: sid })).json();
  await new Promise((r) => setTimeout(r, 100));
  assert.match(output, /issued a SIP token for operator bob/);
  for (const secret of [token, sid.slice(4), ...operators.map((o) => o.sip.password), 'bob-crm-password', 'alice-crm-password']) {
    assert.ok(!output.includes(secret), 'a secret reached the log');
  }
});
