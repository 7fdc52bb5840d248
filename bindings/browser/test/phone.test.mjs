// The Phone's session against a scripted gateway: login order, typed errors, reconnection with
// exponential backoff and jitter (mock timers), fresh tokens on every reconnection, keepalive,
// logout, and nothing stored in the browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Phone, PhoneError } from '../src/siptoken-phone.js';
import { setup, online, flush } from './fakes.mjs';

/** The PhoneError a promise rejects with. */
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof PhoneError && e instanceof Error, `not a PhoneError: ${e}`);
    return e;
  }
  assert.fail('the promise resolved');
}

test('the constructor refuses missing options', () => {
  assert.throws(() => new Phone(), TypeError);
  assert.throws(() => new Phone({ url: 'wss://x/ws' }), TypeError);
  assert.throws(() => new Phone({ getToken: () => 't' }), TypeError);
});

test('connect: socket, one login with getToken()’s token, resolves only once registered', async (t) => {
  const env = setup(t);
  const { phone, gw } = env;
  let answer;
  gw.handlers.login = (ws) => (answer = ws);
  assert.equal(phone.state, 'offline');
  let done = false;
  const p = phone.connect().then(() => (done = true));
  assert.equal(phone.connect(), phone.connect(), 'a second connect() shares the attempt');
  await flush();
  await flush();
  assert.equal(gw.sockets.length, 1);
  assert.equal(gw.ws.url, 'wss://gw.example.org/ws');
  assert.deepEqual(gw.ws.sent, [{ type: 'login', token: 'CRM:v1.k1.token1' }]);
  answer.receive({ type: 'registering', aor: 'sip:crm1@sip.example.org' });
  await flush();
  assert.equal(done, false, 'registering is not registered yet');
  assert.equal(phone.aor, 'sip:crm1@sip.example.org');
  answer.receive({ type: 'registered', aor: 'sip:crm1@sip.example.org', expires: 300 });
  await p;
  assert.equal(phone.state, 'registered');
  assert.equal(phone.expires, 300);
  assert.deepEqual(env.events, [
    ['state', 'connecting'],
    ['registering', { aor: 'sip:crm1@sip.example.org' }],
    ['registered', { aor: 'sip:crm1@sip.example.org', expires: 300 }],
    ['state', 'registered'],
  ]);
  // A refresh is reported again; the state does not change.
  gw.ws.receive({ type: 'registered', aor: 'sip:crm1@sip.example.org', expires: 600 });
  assert.deepEqual(env.events.at(-1), ['registered', { aor: 'sip:crm1@sip.example.org', expires: 600 }]);
  assert.equal(phone.expires, 600);
  await phone.connect(); // already registered: resolves at once
  assert.equal(gw.sockets.length, 1);
});

test('an authenticated (registered="false") token counts as registered', async (t) => {
  const env = setup(t);
  env.gw.handlers.login = (ws) => ws.receive({ type: 'authenticated', aor: 'sip:crm1@sip.example.org' });
  await online(env);
  assert.equal(env.phone.state, 'registered');
  assert.equal(env.phone.expires, null);
  assert.deepEqual(env.events.find(([e]) => e === 'authenticated'), ['authenticated', { aor: 'sip:crm1@sip.example.org' }]);
});

test('a refused login rejects with the protocol code and its fields, and goes offline', async (t) => {
  for (const [msg, fields] of [
    [{ type: 'error', code: 'token_rejected', message: 'token rejected', detail: 'expired' }, { detail: 'expired' }],
    [{ type: 'error', code: 'sip_auth_failed', message: 'SIP 403', sipStatus: 403, aor: 'sip:a@b' }, { sipStatus: 403, aor: 'sip:a@b' }],
    [{ type: 'error', code: 'replayed' }, {}],
    [{ type: 'error', code: 'rate_limited' }, {}],
  ]) {
    const env = setup(t);
    env.gw.handlers.login = (ws) => ws.receive(msg);
    const e = await rejection(env.phone.connect());
    assert.equal(e.code, msg.code);
    for (const [k, v] of Object.entries(fields)) assert.equal(e[k], v);
    if (msg.message) assert.equal(e.message, msg.message);
    assert.equal(env.phone.state, 'offline');
    assert.deepEqual(env.states(), ['connecting', 'offline']);
    assert.equal(env.gw.ws.closedWith, 1000);
    await env.tick(120_000);
    assert.equal(env.gw.sockets.length, 1, 'a failed connect() does not retry by itself');
  }
});

test('getToken() failing, a socket that closes, a silent gateway: typed local errors', async (t) => {
  let env = setup(t, { getToken: () => Promise.reject(new Error('HTTP 401')) });
  let e = await rejection(env.phone.connect());
  assert.equal(e.code, 'token_unavailable');
  assert.match(e.message, /HTTP 401/);
  assert.deepEqual(env.gw.ws.sent, [], 'no login without a token');

  env = setup(t, { getToken: () => '' });
  assert.equal((await rejection(env.phone.connect())).code, 'token_unavailable');

  env = setup(t);
  env.gw.autoOpen = false;
  let p = env.phone.connect();
  await flush();
  env.gw.ws.drop(1006);
  e = await rejection(p);
  assert.equal(e.code, 'connection_failed');
  assert.match(e.message, /1006/);

  env = setup(t, { connectTimeoutMs: 5000 });
  env.gw.handlers.login = () => {};
  p = env.phone.connect();
  const r = rejection(p);
  await env.tick(4999);
  assert.equal(env.phone.state, 'connecting');
  await env.tick(1);
  assert.equal((await r).code, 'timeout');
  assert.equal(env.phone.state, 'offline');
});

test('a dropped socket: calls end logged_out, then reconnection with a fresh token after the backoff', async (t) => {
  const env = await online(setup(t));
  const { phone, gw } = env;
  gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: gw.aor, from: 'sip:+15551234@pbx' });
  const [call] = phone.calls;
  const ended = [];
  call.on('ended', (i) => ended.push(i));
  t.mock.method(Math, 'random', () => 0.5);
  gw.ws.drop(1006);
  assert.equal(phone.state, 'reconnecting');
  assert.deepEqual(await call.ended, { reason: 'logged_out' });
  assert.deepEqual(env.events.find(([e]) => e === 'reconnecting'), ['reconnecting', { attempt: 1, delayMs: 750 }]);
  await env.tick(749);
  assert.equal(gw.sockets.length, 1, 'no attempt before the delay');
  await env.tick(1);
  await flush();
  assert.equal(gw.sockets.length, 2);
  assert.deepEqual(gw.ws.sent, [{ type: 'login', token: 'CRM:v1.k1.token2' }], 'a fresh token: tokens are single use');
  assert.deepEqual(env.tokens, ['CRM:v1.k1.token1', 'CRM:v1.k1.token2']);
  assert.equal(phone.state, 'registered');
  assert.deepEqual(env.states(), ['connecting', 'registered', 'reconnecting', 'registered']);
  // The old call stays ended, exactly once, whatever arrives later.
  gw.ws.receive({ type: 'ended', call: 'in-1', reason: 'remote_hangup' });
  await flush();
  assert.deepEqual(ended, [{ reason: 'logged_out' }]);
  assert.equal(phone.calls.length, 0);
});

test('backoff: exponential, capped, with jitter inside its bounds; the attempt counter resets', async (t) => {
  const env = await online(setup(t, { reconnect: { initialDelayMs: 1000, maxDelayMs: 10_000, factor: 2, jitter: 0.5 } }));
  const { phone, gw } = env;
  const randoms = [0, 0.999999, 0.25, 0, 0.999999, 0.5, 0, 0.5];
  t.mock.method(Math, 'random', () => randoms.shift());
  // Every attempt fails: the socket opens, the login is refused with a retryable code.
  gw.handlers.login = (ws) => ws.receive({ type: 'error', code: 'sip_unreachable', aor: gw.aor });
  gw.ws.drop(1006);
  const bases = [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
  for (let i = 0; i < bases.length; i++) {
    const ev = env.events.filter(([e]) => e === 'reconnecting').at(-1)[1];
    assert.equal(ev.attempt, i + 1);
    assert.ok(ev.delayMs >= bases[i] * 0.5 && ev.delayMs <= bases[i], `attempt ${i + 1}: ${ev.delayMs} outside [${bases[i] / 2}, ${bases[i]}]`);
    const sockets = gw.sockets.length;
    await env.tick(ev.delayMs - 1);
    assert.equal(gw.sockets.length, sockets, `attempt ${i + 1} came early`);
    await env.tick(1);
    await flush();
    assert.equal(gw.sockets.length, sockets + 1);
    const err = env.events.filter(([e]) => e === 'error').at(-1)[1];
    assert.equal(err.code, 'sip_unreachable');
  }
  const delays = env.events.filter(([e]) => e === 'reconnecting').map(([, x]) => x.delayMs);
  // base × (1 − jitter × random): 1000×1, 2000×0.5, 4000×0.875, 8000×1, 10000×0.5, ×0.75, ×1, ×0.75
  assert.deepEqual(delays, [1000, 1000, 3500, 8000, 5000, 7500, 10_000, 7500]);
  assert.equal(phone.state, 'reconnecting');
  // Success: the next drop starts over from the first delay.
  gw.handlers.login = (ws) => ws.receive({ type: 'registered', aor: gw.aor, expires: 600 });
  t.mock.method(Math, 'random', () => 0);
  await env.tick(10_000);
  await flush();
  assert.equal(phone.state, 'registered');
  gw.ws.drop(1001);
  assert.deepEqual(env.events.at(-1), ['reconnecting', { attempt: 1, delayMs: 1000 }]);
  await phone.disconnect();
});

test('reconnection gives up on a refused token or credentials, and after maxAttempts', async (t) => {
  let env = await online(setup(t));
  env.gw.handlers.login = (ws) => ws.receive({ type: 'error', code: 'token_rejected', detail: 'bad_signature' });
  env.gw.ws.drop(1006);
  await env.tick(1000);
  await flush();
  assert.equal(env.phone.state, 'offline');
  assert.equal(env.events.filter(([e]) => e === 'error').at(-1)[1].code, 'token_rejected');
  await env.tick(600_000);
  assert.equal(env.gw.sockets.length, 2);

  env = await online(setup(t, { reconnect: { maxAttempts: 3 } }));
  env.gw.autoOpen = false;
  env.gw.ws.drop(1006);
  for (let i = 0; i < 3; i++) {
    await env.tick(60_000);
    env.gw.ws.drop(1006); // the gateway is down: every socket fails
    await flush();
  }
  assert.equal(env.gw.sockets.length, 4);
  assert.equal(env.phone.state, 'offline');
  const connect = rejection(env.phone.connect()); // the app may try again by hand
  await flush();
  assert.equal(env.gw.sockets.length, 5);
  env.gw.ws.drop(1006);
  assert.equal((await connect).code, 'connection_failed');
});

test('reconnect: false goes offline when the socket drops', async (t) => {
  const env = await online(setup(t, { reconnect: false }));
  env.gw.ws.drop(1006);
  assert.equal(env.phone.state, 'offline');
  await env.tick(120_000);
  assert.equal(env.gw.sockets.length, 1);
});

test('registrationLost: reported with its code, the socket closed, a new session with a fresh token', async (t) => {
  const env = await online(setup(t));
  t.mock.method(Math, 'random', () => 0);
  const first = env.gw.ws;
  first.receive({ type: 'registrationLost', aor: env.gw.aor, code: 'sip_rejected', message: 'SIP 404', sipStatus: 404 });
  assert.deepEqual(env.events.find(([e]) => e === 'registrationLost')[1], {
    aor: env.gw.aor,
    code: 'sip_rejected',
    message: 'SIP 404',
    sipStatus: 404,
  });
  assert.equal(first.closedWith, 1000);
  assert.equal(env.phone.state, 'reconnecting');
  await env.tick(1000);
  await flush();
  assert.equal(env.phone.state, 'registered');
  assert.deepEqual(env.gw.ws.sent, [{ type: 'login', token: 'CRM:v1.k1.token2' }]);
});

test('gateway shutdown (unregistered, close 1001) and idle_timeout (close 4408) reconnect', async (t) => {
  const env = await online(setup(t));
  t.mock.method(Math, 'random', () => 0);
  env.gw.ws.receive({ type: 'unregistered', aor: env.gw.aor });
  env.gw.ws.drop(1001);
  assert.equal(env.phone.state, 'reconnecting');
  await env.tick(1000);
  await flush();
  assert.equal(env.phone.state, 'registered');
  env.gw.ws.receive({ type: 'error', code: 'idle_timeout' });
  assert.equal(env.events.at(-1)[1].code, 'idle_timeout');
  env.gw.ws.drop(4408);
  assert.equal(env.phone.state, 'reconnecting');
  await env.tick(1000);
  await flush();
  assert.equal(env.phone.state, 'registered');
  assert.equal(env.tokens.length, 3);
});

test('connect() while reconnecting resolves with the reconnection', async (t) => {
  const env = await online(setup(t));
  env.gw.ws.drop(1006);
  let done = false;
  const p = env.phone.connect().then(() => (done = true));
  await flush();
  assert.equal(done, false);
  await env.tick(1000);
  await flush();
  await p;
  assert.equal(env.gw.sockets.length, 2);
});

test('keepalive: pings answered keep the socket; a missed pong drops and reconnects it', async (t) => {
  const env = await online(setup(t, { keepaliveMs: 20_000 }));
  t.mock.method(Math, 'random', () => 0);
  await env.tick(20_000);
  await env.tick(20_000);
  assert.equal(env.gw.sent('ping').length, 2);
  assert.equal(env.phone.state, 'registered');
  delete env.gw.handlers.ping; // the gateway (or the path to it) goes silent
  await env.tick(20_000);
  assert.equal(env.phone.state, 'registered');
  await env.tick(20_000);
  assert.equal(env.phone.state, 'reconnecting');
  assert.equal(env.gw.sockets[0].closedWith, 1000);
  env.gw.handlers.ping = (ws) => ws.receive({ type: 'pong' });
  await env.tick(1000);
  await flush();
  assert.equal(env.phone.state, 'registered');
});

test('ping() resolves with the round trip and rejects when the socket drops', async (t) => {
  const env = await online(setup(t, { keepaliveMs: 0 }));
  delete env.gw.handlers.ping;
  const p = env.phone.ping();
  await env.tick(40);
  env.gw.ws.receive({ type: 'pong' });
  assert.equal(await p, 40);
  const lost = rejection(env.phone.ping());
  env.gw.ws.drop(1006);
  assert.equal((await lost).code, 'connection_failed');
  await env.phone.disconnect();
  assert.equal((await rejection(env.phone.ping())).code, 'disconnected');
});

test('disconnect: hangs up calls, then logout, waits for unregistered, closes, stays offline', async (t) => {
  const env = await online(setup(t));
  const { phone, gw } = env;
  gw.handlers.hangup = (ws, m) => ws.receive({ type: 'ended', call: m.call, reason: 'hangup' });
  gw.ws.receive({ type: 'incomingCall', call: 'in-7', aor: gw.aor, from: 'sip:100@pbx' });
  const [call] = phone.calls;
  // Answer it so that the disconnect hangs up an established call.
  gw.handlers.answer = (ws, m) => {
    ws.receive({ type: 'media', call: m.call, sdp: 'v=0 answer' });
    ws.receive({ type: 'answered', call: m.call });
  };
  const answering = call.answer();
  await env.tick(10);
  await answering;
  let logoutAnswer;
  gw.handlers.logout = (ws) => (logoutAnswer = ws);
  let done = false;
  const p = phone.disconnect().then(() => (done = true));
  await flush();
  assert.deepEqual(gw.ws.sent.map((m) => m.type), ['login', 'answer', 'hangup', 'logout']);
  assert.equal(done, false, 'waits for unregistered');
  assert.equal(phone.disconnect(), phone.disconnect(), 'a second disconnect() shares the first');
  logoutAnswer.receive({ type: 'unregistered', aor: gw.aor });
  await p;
  assert.equal(gw.sent('logout').length, 1);
  assert.deepEqual(await call.ended, { reason: 'hangup' });
  assert.equal(gw.ws.closedWith, 1000);
  assert.equal(phone.state, 'offline');
  assert.equal(phone.aor, null);
  await env.tick(600_000);
  assert.equal(gw.sockets.length, 1, 'no reconnection after disconnect()');
  assert.deepEqual(env.states(), ['connecting', 'registered', 'offline']);
});

test('disconnect while connecting or reconnecting stops everything', async (t) => {
  let env = setup(t);
  env.gw.handlers.login = () => {};
  const p = rejection(env.phone.connect());
  await flush();
  await flush();
  await env.phone.disconnect();
  assert.equal((await p).code, 'disconnected');
  assert.equal(env.phone.state, 'offline');

  env = await online(setup(t));
  env.gw.ws.drop(1006);
  await env.phone.disconnect();
  await env.tick(600_000);
  assert.equal(env.gw.sockets.length, 1);
  assert.deepEqual(env.states(), ['connecting', 'registered', 'reconnecting', 'offline']);
});

test('every gateway message reaches the message event; unknown types are ignored', async (t) => {
  const env = await online(setup(t));
  const seen = [];
  env.phone.on('message', (m) => seen.push(m));
  env.gw.ws.receive({ type: 'somethingNew', x: 1 });
  env.gw.ws.onmessage({ data: 'not json' });
  assert.deepEqual(seen, [{ type: 'somethingNew', x: 1 }]);
  assert.equal(env.phone.state, 'registered');
});

test('listeners: on() returns the remover; a throwing listener does not break the phone', async (t) => {
  const env = setup(t);
  const seen = [];
  const off = env.phone.on('state', (s) => seen.push(s));
  env.phone.on('state', () => {
    throw new Error('app bug');
  });
  const uncaught = [];
  // Browsers report it like an uncaught exception (console, window.onerror), after the SDK is done.
  globalThis.reportError = (e) => uncaught.push(e.message);
  try {
    await online(env);
    off();
    await env.phone.disconnect();
    await flush();
  } finally {
    delete globalThis.reportError;
  }
  assert.deepEqual(seen, ['connecting', 'registered']);
  assert.equal(env.phone.state, 'offline');
  assert.deepEqual(uncaught, ['app bug', 'app bug', 'app bug']);
});

test('nothing is stored: localStorage, sessionStorage and cookies are never touched', async (t) => {
  const touched = [];
  const trap = (name) =>
    new Proxy({}, { get: (_, k) => touched.push(`${name}.${String(k)}`), set: (_, k) => touched.push(`${name}.${String(k)}`) });
  for (const name of ['localStorage', 'sessionStorage', 'indexedDB']) {
    Object.defineProperty(globalThis, name, { value: trap(name), configurable: true });
  }
  Object.defineProperty(globalThis, 'document', { value: { createElement: () => null, cookie: trap('cookie') }, configurable: true });
  try {
    const env = await online(setup(t));
    env.gw.ws.drop(1006);
    await env.tick(1000);
    await flush();
    env.gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: env.gw.aor, from: 'sip:1@x' });
    env.gw.ws.receive({ type: 'ended', call: 'in-1', reason: 'cancelled' });
    await env.phone.disconnect();
  } finally {
    for (const name of ['localStorage', 'sessionStorage', 'indexedDB', 'document']) delete globalThis[name];
  }
  assert.deepEqual(touched, []);
});
