// The hand-written declarations and the module agree: every class member declared in
// siptoken-phone.d.ts exists at run time, every event the module emits is declared (and every
// declared event is emitted), and every gateway → client message of the protocol is handled.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as sdk from '../src/siptoken-phone.js';
import { setup, online } from './fakes.mjs';

const dts = readFileSync(new URL('../src/siptoken-phone.d.ts', import.meta.url), 'utf8');
const src = readFileSync(new URL('../src/siptoken-phone.js', import.meta.url), 'utf8');

/** The body of a top-level declaration `export declare class NAME` / `export interface NAME`. */
function block(kind, name) {
  const start = dts.search(new RegExp(`^export (declare )?${kind} ${name}\\b`, 'm'));
  assert.ok(start >= 0, `${kind} ${name} not declared`);
  const end = dts.indexOf('\n}\n', start);
  return dts.slice(dts.indexOf('{', start) + 1, end);
}

/** Member names of a declaration body (properties and methods, comments skipped). */
function members(body) {
  return body
    .split('\n')
    .map((l) => l.match(/^ {2}(?:readonly )?(\w+)\??[:(<]/))
    .filter(Boolean)
    .map((m) => m[1])
    .filter((n) => n !== 'constructor');
}

test('the module exports exactly the declared runtime names', () => {
  const declared = [...dts.matchAll(/^export declare class (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(sdk).sort(), declared);
});

test('every declared member of Phone, Call and PhoneError exists at run time', async (t) => {
  const env = await online(setup(t));
  env.gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: env.gw.aor, from: 'sip:1@x', displayName: 'X' });
  const [call] = env.phone.calls;
  const err = new sdk.PhoneError('busy', 'busy', { sipStatus: 486, detail: 'd', aor: 'a', callId: 'c' });
  for (const [name, obj] of [['Phone', env.phone], ['Call', call], ['PhoneError', err]]) {
    const names = members(block('class', name));
    assert.ok(names.length >= 4, `${name}: too few members parsed`);
    for (const m of names) assert.ok(m in obj, `${name}.${m} is declared but missing`);
  }
  // And the other way round: the public fields of a call are all declared.
  const declared = new Set(members(block('class', 'Call')));
  for (const k of Object.keys(call).filter((k) => !k.startsWith('_'))) assert.ok(declared.has(k), `Call.${k} is not declared`);
  for (const k of Object.keys(env.phone).filter((k) => !k.startsWith('_'))) {
    assert.ok(members(block('class', 'Phone')).includes(k), `Phone.${k} is not declared`);
  }
});

test('emitted events and declared events are the same sets', () => {
  const emitted = (cls) => {
    // Calls emit with this._emit inside class Call; the phone with this._emit in class Phone,
    // and call code reaches the phone with this._phone._emit.
    const callSrc = src.slice(src.indexOf('export class Call extends'), src.indexOf('export class Phone extends'));
    const phoneSrc = src.slice(src.indexOf('export class Phone extends'));
    const names = new Set();
    const text = cls === 'Call' ? callSrc : phoneSrc;
    for (const m of text.matchAll(/(?<!_phone\.)_emit\((?:'(\w+)'|(m\.type))/g)) names.add(m[1] ?? m[2]);
    if (cls === 'Phone') for (const m of callSrc.matchAll(/_phone\._emit\('(\w+)'/g)) names.add(m[1]);
    return names;
  };
  for (const [cls, iface, dynamic] of [
    ['Phone', 'PhoneEvents', ['registered', 'authenticated']],
    ['Call', 'CallEvents', ['held', 'resumed']],
  ]) {
    const declared = members(block('interface', iface)).sort();
    const names = emitted(cls);
    if (names.delete('m.type')) for (const d of dynamic) names.add(d);
    assert.deepEqual([...names].sort(), declared, `${cls}: emitted vs ${iface}`);
  }
});

test('every gateway → client message of the protocol is handled', () => {
  const handled = new Set([...src.matchAll(/case '(\w+)':/g)].map((m) => m[1]));
  // docs/gateway-protocol.md (session) and issue 13 (calls).
  for (const type of [
    'registering', 'registered', 'authenticated', 'unregistered', 'registrationLost', 'pong', 'error',
    'incomingCall', 'media', 'ringing', 'earlyMedia', 'answered', 'held', 'resumed', 'transferring', 'ended',
  ]) {
    assert.ok(handled.has(type), `no case for ${type}`);
  }
  // And every client → gateway message is sent somewhere.
  for (const type of ['login', 'logout', 'ping', 'call', 'answer', 'reject', 'hangup', 'dtmf', 'transfer']) {
    assert.match(src, new RegExp(`type: '${type}'`), `never sends ${type}`);
  }
  assert.match(src, /type: kind/); // hold / unhold
});

test('the declared code unions list the protocol’s codes', () => {
  const union = (name) => {
    const m = dts.match(new RegExp(`export type ${name} =([^]+?);\n`));
    return [...m[1].matchAll(/'(\w+)'/g)].map((x) => x[1]);
  };
  assert.deepEqual(union('GatewayErrorCode').sort(), [
    'bad_request', 'call_limit', 'idle_timeout', 'invalid_sdp', 'invalid_target', 'not_logged_in', 'rate_limited',
    'replayed', 'session_limit', 'sip_auth_failed', 'sip_rejected', 'sip_timeout', 'sip_unreachable',
    'store_unavailable', 'token_rejected', 'unknown_call',
  ]);
  assert.deepEqual(union('KnownEndReason').sort(), [
    'busy', 'cancelled', 'declined', 'failed', 'hangup', 'logged_out', 'media_timeout', 'no_answer', 'not_found',
    'remote_hangup', 'transferred', 'unsupported_media',
  ]);
  // Every code the module raises itself is declared (a local one, or a gateway code it reuses:
  // `not_logged_in` for call() while offline, `invalid_target` for an empty number).
  const local = new Set(union('LocalErrorCode'));
  const gateway = new Set(union('GatewayErrorCode'));
  const raised = new Set([...src.matchAll(/new PhoneError\('(\w+)'/g)].map((m) => m[1]));
  for (const code of ['microphone_denied', 'microphone_not_found', 'microphone_unavailable']) raised.add(code);
  for (const code of raised) assert.ok(local.has(code) || gateway.has(code), `raises undeclared ${code}`);
  for (const code of local) assert.ok(raised.has(code), `declares ${code}, never raised`);
});
