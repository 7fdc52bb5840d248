// Calls against the scripted gateway and fake WebRTC: the browser always offers, only after ICE
// gathering completed (or timed out); media → answer applied; ringing/answered/hold/DTMF/transfer
// messages; typed errors; `ended` exactly once; the incoming call flow; microphone errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PhoneError } from '../src/siptoken-phone.js';
import { setup, online, flush, FakePeerConnection, FakeAudio, CANDIDATE, OFFER } from './fakes.mjs';

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof PhoneError, `not a PhoneError: ${e}`);
    return e;
  }
  assert.fail('the promise resolved');
}

/** A gateway that answers every offer with `media` at once. */
function answering(gw) {
  gw.handlers.call = gw.handlers.answer = (ws, m) => ws.receive({ type: 'media', call: m.call, sdp: `answer for ${m.call}` });
}

/** An outgoing call, placed and answered by the far end. */
async function established(env, to = '1002') {
  answering(env.gw);
  const p = env.phone.call(to);
  await env.tick(10);
  const call = await p;
  env.gw.ws.receive({ type: 'answered', call: call.id });
  await call.answered;
  return call;
}

test('outgoing call: microphone, complete offer after ICE gathering, media applied, then the far end', async (t) => {
  const ringback = [];
  const env = await online(setup(t, { audio: { deviceId: 'mic2', noiseSuppression: false }, ringback: { start: (c) => ringback.push(['start', c.id]), stop: (c) => ringback.push(['stop', c.id]) } }));
  const { phone, gw, mic } = env;
  const created = [];
  phone.on('call', (c) => created.push(c));
  let resolved = null;
  const p = phone.call(' +15551234 ').then((c) => (resolved = c));
  await flush();
  assert.deepEqual(mic.requests, [
    { audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: true, deviceId: 'mic2' }, video: false },
  ]);
  const [pc] = FakePeerConnection.instances;
  assert.deepEqual(pc.configuration, { iceServers: [] });
  assert.equal(pc.senders.length, 1);
  assert.equal(created.length, 1);
  assert.equal(created[0].state, 'connecting');
  assert.equal(gw.sent('call').length, 0, 'no offer before ICE gathering completed');
  await env.tick(10);
  const [offer] = gw.sent('call');
  assert.deepEqual(offer, { type: 'call', to: '+15551234', call: 'c1', sdp: OFFER + CANDIDATE });
  assert.equal(resolved, null, 'resolves only on the gateway’s media');
  gw.ws.receive({ type: 'media', call: 'c1', sdp: 'v=0 answer' });
  await p;
  const call = resolved;
  assert.equal(call, created[0]);
  assert.deepEqual(pc.remoteDescription, { type: 'answer', sdp: 'v=0 answer' });
  assert.equal(call.remoteStream, pc.remoteStream);
  assert.equal(call.audioElement.srcObject, pc.remoteStream, 'the SDK plays the far end');
  assert.equal(call.audioElement.playing, true);
  assert.equal(call.direction, 'outgoing');
  assert.equal(call.to, '+15551234');
  assert.equal(call.aor, gw.aor);
  assert.deepEqual(phone.calls, [call]);

  const states = [];
  call.on('state', (s) => states.push(s));
  gw.ws.receive({ type: 'ringing', call: 'c1' });
  assert.equal(call.state, 'ringing');
  assert.deepEqual(ringback, [['start', 'c1']]);
  gw.ws.receive({ type: 'earlyMedia', call: 'c1' });
  assert.deepEqual(ringback, [['start', 'c1'], ['stop', 'c1']], 'the far end’s audio replaces the ringback');
  gw.ws.receive({ type: 'answered', call: 'c1' });
  await call.answered;
  assert.ok(call.answeredAt instanceof Date);
  assert.deepEqual(states, ['ringing', 'early', 'answered']);
  assert.equal(ringback.length, 2);
});

test('ICE gathering that never completes: the offer goes out after iceGatheringTimeoutMs', async (t) => {
  const env = await online(setup(t, { iceGatheringTimeoutMs: 1500 }));
  FakePeerConnection.gatherMs = null;
  answering(env.gw);
  const p = env.phone.call('1002');
  await env.tick(1499);
  assert.equal(env.gw.sent('call').length, 0);
  await env.tick(1);
  assert.equal(env.gw.sent('call')[0].sdp, OFFER);
  await p;
});

test('Firefox’s gathering order: candidates, an empty end-of-candidates one, complete, null; the offer waits for complete', async (t) => {
  // As Firefox 153 fires them (observed in tests/softphone_browser.rs): the empty candidate
  // ends one m-line's candidates, not gathering.
  const env = await online(setup(t));
  FakePeerConnection.gatherMs = null;
  answering(env.gw);
  const p = env.phone.call('1002');
  await env.tick(10);
  const pc = FakePeerConnection.instances.at(-1);
  const candidate = (c) => pc.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate: c }));
  const ipv6 = 'a=candidate:1 1 UDP 2122252543 ::1 39198 typ host\r\n';
  pc.localDescription.sdp += CANDIDATE;
  candidate({ candidate: CANDIDATE.slice(2).trim() });
  candidate({ candidate: '', sdpMid: '0' });
  await env.tick(10);
  assert.equal(env.gw.sent('call').length, 0, 'the empty candidate does not end gathering');
  pc.localDescription.sdp += ipv6;
  pc.iceGatheringState = 'complete';
  pc.dispatchEvent(new Event('icegatheringstatechange'));
  candidate(null);
  await env.tick(10);
  assert.equal(env.gw.sent('call').length, 1);
  assert.equal(env.gw.sent('call')[0].sdp, OFFER + CANDIDATE + ipv6);
  await p;
});

test('hold, unhold, DTMF, transfer: the messages, and promises settled by the gateway’s events', async (t) => {
  const env = await online(setup(t));
  const call = await established(env);
  const { gw } = env;
  const mic = call.localStream.getAudioTracks()[0];
  const held = [];
  call.on('held', (x) => held.push(['held', x]));
  call.on('resumed', (x) => held.push(['resumed', x]));

  let done = false;
  const h = call.hold().then(() => (done = true));
  await flush();
  assert.deepEqual(gw.ws.sent.at(-1), { type: 'hold', call: 'c1' });
  assert.equal(done, false);
  gw.ws.receive({ type: 'held', call: 'c1', by: 'local' });
  await h;
  assert.equal(call.held, true);
  assert.equal(mic.enabled, false, 'nothing is sent while on hold');
  await call.hold(); // already held: nothing sent
  assert.equal(gw.sent('hold').length, 1);
  const u = call.unhold();
  assert.deepEqual(gw.ws.sent.at(-1), { type: 'unhold', call: 'c1' });
  gw.ws.receive({ type: 'resumed', call: 'c1', by: 'local' });
  await u;
  assert.equal(call.held, false);
  assert.equal(mic.enabled, true);
  // The far end holds: reported, our own hold state unchanged.
  gw.ws.receive({ type: 'held', call: 'c1', by: 'remote' });
  assert.equal(call.remoteHeld, true);
  assert.equal(call.held, false);
  gw.ws.receive({ type: 'resumed', call: 'c1', by: 'remote' });
  assert.equal(call.remoteHeld, false);
  assert.deepEqual(held, [
    ['held', { by: 'local' }],
    ['resumed', { by: 'local' }],
    ['held', { by: 'remote' }],
    ['resumed', { by: 'remote' }],
  ]);

  call.sendDtmf('12#');
  call.sendDtmf('*0abcd');
  assert.deepEqual(gw.sent('dtmf'), [
    { type: 'dtmf', digits: '12#', call: 'c1' },
    { type: 'dtmf', digits: '*0ABCD', call: 'c1' },
  ]);

  const tr = call.transfer(' 1003 ');
  assert.deepEqual(gw.ws.sent.at(-1), { type: 'transfer', to: '1003', call: 'c1' });
  gw.ws.receive({ type: 'transferring', call: 'c1' });
  await tr;
  gw.ws.receive({ type: 'ended', call: 'c1', reason: 'transferred' });
  assert.deepEqual(await call.ended, { reason: 'transferred' });
});

test('DTMF validation: 1 to 32 of 0-9 * # A-D, in early media or once answered', async (t) => {
  const env = await online(setup(t));
  answering(env.gw);
  let call;
  env.phone.on('call', (c) => (call = c));
  const p = env.phone.call('1002');
  await flush();
  assert.throws(() => call.sendDtmf('1'), (e) => e instanceof PhoneError && e.code === 'invalid_state');
  await env.tick(10);
  await p;
  assert.throws(() => call.sendDtmf('1'), (e) => e.code === 'invalid_state', 'the far end has not answered');
  env.gw.ws.receive({ type: 'ringing', call: call.id });
  assert.throws(() => call.sendDtmf('1'), (e) => e.code === 'invalid_state');
  env.gw.ws.receive({ type: 'earlyMedia', call: call.id });
  call.sendDtmf('#'); // an IVR in early media
  env.gw.ws.receive({ type: 'answered', call: call.id });
  call.sendDtmf('0123456789*#ABCD');
  call.sendDtmf('1'.repeat(32));
  for (const bad of ['', 'E', '1 2', '1-2', '１', '1'.repeat(33), 12, null, undefined]) {
    assert.throws(() => call.sendDtmf(bad), (e) => e instanceof PhoneError && e.code === 'invalid_dtmf', `accepted ${JSON.stringify(bad)}`);
  }
  assert.equal(env.gw.sent('dtmf').length, 3);
  env.gw.ws.receive({ type: 'ended', call: call.id, reason: 'remote_hangup' });
  assert.throws(() => call.sendDtmf('1'), (e) => e.code === 'invalid_state');
});

test('hold/transfer before the answer, gateway errors and silence: typed rejections', async (t) => {
  const env = await online(setup(t, { requestTimeoutMs: 5000 }));
  answering(env.gw);
  const p = env.phone.call('1002');
  await env.tick(10);
  const call = await p;
  assert.equal((await rejection(call.hold())).code, 'invalid_state');
  assert.equal((await rejection(call.transfer('1003'))).code, 'invalid_state');
  assert.equal((await rejection(call.transfer(''))).code, 'invalid_target');
  env.gw.ws.receive({ type: 'answered', call: 'c1' });
  // The gateway refuses a transfer target.
  const tr = rejection(call.transfer('no such'));
  env.gw.ws.receive({ type: 'error', code: 'invalid_target', call: 'c1', message: 'bad target' });
  const e = await tr;
  assert.equal(e.code, 'invalid_target');
  assert.equal(e.callId, 'c1');
  // The gateway never answers a hold.
  const h = rejection(call.hold());
  await env.tick(5000);
  assert.equal((await h).code, 'timeout');
  // An error nobody waits for reaches the call's and the phone's error events.
  const errs = [];
  call.on('error', (x) => errs.push(x.code));
  env.gw.ws.receive({ type: 'error', code: 'bad_request', call: 'c1' });
  assert.deepEqual(errs, ['bad_request']);
  assert.equal(env.events.at(-1)[1].code, 'bad_request');
  assert.equal(call.state, 'answered');
  // unknown_call: the gateway no longer has it.
  const h2 = call.hold();
  env.gw.ws.receive({ type: 'held', call: 'c1', by: 'local' });
  await h2;
  const u = rejection(call.unhold());
  env.gw.ws.receive({ type: 'error', code: 'unknown_call', call: 'c1' });
  assert.equal((await u).code, 'unknown_call');
  assert.deepEqual(await call.ended, { reason: 'failed' });
});

test('a refused offer: phone.call() rejects with the gateway’s code, no hangup, ended once', async (t) => {
  for (const code of ['call_limit', 'invalid_target', 'invalid_sdp', 'not_logged_in']) {
    const env = await online(setup(t));
    let call;
    env.phone.on('call', (c) => (call = c));
    env.gw.handlers.call = (ws, m) => ws.receive({ type: 'error', code, call: m.call });
    const p = rejection(env.phone.call('1002'));
    await env.tick(10);
    const e = await p;
    assert.equal(e.code, code);
    assert.equal(e.callId, 'c1');
    assert.deepEqual(await call.ended, { reason: 'failed' });
    assert.equal(env.gw.sent('hangup').length, 0, 'the gateway has no such call to hang up');
    assert.equal(env.phone.calls.length, 0);
    assert.equal(FakePeerConnection.instances[0].closed, true);
    assert.equal(call.localStream.getTracks()[0].stopped, true, 'the microphone is released');
  }
});

test('the far end does not answer: answered rejects with the reason, ended resolves exactly once', async (t) => {
  for (const [reason, sipStatus] of [['busy', 486], ['declined', 603], ['not_found', 404], ['no_answer', 408], ['unsupported_media', 488], ['failed', undefined]]) {
    const env = await online(setup(t));
    answering(env.gw);
    const p = env.phone.call('1002');
    await env.tick(10);
    const call = await p;
    const endedEvents = [];
    call.on('ended', (i) => endedEvents.push(i));
    env.gw.ws.receive({ type: 'ringing', call: 'c1' });
    env.gw.ws.receive({ type: 'ended', call: 'c1', reason, ...(sipStatus && { sipStatus }) });
    env.gw.ws.receive({ type: 'ended', call: 'c1', reason: 'remote_hangup' });
    const e = await rejection(call.answered);
    assert.equal(e.code, reason);
    assert.equal(e.sipStatus, sipStatus);
    const info = sipStatus ? { reason, sipStatus } : { reason };
    assert.deepEqual(await call.ended, info);
    assert.deepEqual(call.endInfo, info);
    assert.deepEqual(endedEvents, [info]);
    assert.equal(call.state, 'ended');
    assert.equal(call.audioElement.srcObject, null, 'the audio element is released');
    assert.equal(FakePeerConnection.instances[0].closed, true);
  }
});

test('hangup: before the offer is out nothing is sent; after, hangup and the gateway’s ended', async (t) => {
  const env = await online(setup(t, { requestTimeoutMs: 3000 }));
  let call;
  env.phone.on('call', (c) => (call = c));
  const p = rejection(env.phone.call('1002'));
  await flush();
  const bye = call.hangup();
  assert.equal((await p).code, 'hangup');
  assert.deepEqual(await bye, { reason: 'hangup' });
  await env.tick(10);
  assert.equal(env.gw.sent('call').length, 0, 'the gateway never heard of it');

  const c2 = await established(env);
  env.gw.handlers.hangup = () => {}; // a silent gateway: the call still ends, locally
  const ended = c2.hangup();
  await flush();
  assert.deepEqual(env.gw.ws.sent.at(-1), { type: 'hangup', call: 'c2' });
  assert.equal(c2.state, 'answered');
  await env.tick(3000);
  assert.deepEqual(await ended, { reason: 'hangup' });

  const c3 = await established(env);
  env.gw.handlers.hangup = (ws, m) => ws.receive({ type: 'ended', call: m.call, reason: 'hangup' });
  assert.deepEqual(await c3.hangup(), { reason: 'hangup' });
  assert.deepEqual(await c3.hangup(), { reason: 'hangup' }, 'hangup of an ended call');
  assert.equal(env.gw.sent('hangup').length, 2);
});

test('an answer the browser cannot apply: webrtc_failed, the gateway told, ended failed', async (t) => {
  const env = await online(setup(t));
  answering(env.gw);
  FakePeerConnection.failRemote = true;
  let call;
  env.phone.on('call', (c) => (call = c));
  const p = rejection(env.phone.call('1002'));
  await env.tick(10);
  const e = await p;
  assert.equal(e.code, 'webrtc_failed');
  assert.match(e.message, /SessionDescription/);
  assert.deepEqual(env.gw.sent('hangup'), [{ type: 'hangup', call: 'c1' }]);
  assert.deepEqual(await call.ended, { reason: 'failed' });
});

test('microphone errors are typed, and nothing reaches the gateway', async (t) => {
  for (const [name, code] of [
    ['NotAllowedError', 'microphone_denied'],
    ['SecurityError', 'microphone_denied'],
    ['NotFoundError', 'microphone_not_found'],
    ['OverconstrainedError', 'microphone_not_found'],
    ['NotReadableError', 'microphone_unavailable'],
    ['AbortError', 'microphone_unavailable'],
  ]) {
    const env = await online(setup(t));
    env.mic.fail = name;
    const e = await rejection(env.phone.call('1002'));
    assert.equal(e.code, code, name);
    assert.equal(env.gw.sent('call').length, 0);
    assert.equal(FakePeerConnection.instances.length, 0);
    assert.equal(env.phone.calls.length, 0);
  }
  const env = await online(setup(t, { mediaDevices: undefined }));
  const e = await rejection(env.phone.call('1002'));
  assert.equal(e.code, 'media_unsupported');
  assert.match(e.message, /https/);
});

test('call() needs a registered phone and a target', async (t) => {
  const env = setup(t);
  assert.equal((await rejection(env.phone.call('1002'))).code, 'not_logged_in');
  await online(env);
  assert.equal((await rejection(env.phone.call('  '))).code, 'invalid_target');
  assert.equal((await rejection(env.phone.call(1002))).code, 'invalid_target');
});

test('mute: the microphone track is disabled while muted or held, nothing is sent', async (t) => {
  const env = await online(setup(t));
  const call = await established(env);
  const track = call.localStream.getAudioTracks()[0];
  const muted = [];
  call.on('mute', (m) => muted.push(m));
  const before = env.gw.ws.sent.length;
  call.mute();
  assert.equal(call.muted, true);
  assert.equal(track.enabled, false);
  env.gw.ws.receive({ type: 'held', call: 'c1', by: 'local' });
  call.mute(false);
  assert.equal(track.enabled, false, 'still held');
  env.gw.ws.receive({ type: 'resumed', call: 'c1', by: 'local' });
  assert.equal(track.enabled, true);
  assert.deepEqual(muted, [true, false]);
  assert.equal(env.gw.ws.sent.length, before);
});

test('incoming call: banner data, ringtone, answer offers after gathering, established', async (t) => {
  const tones = [];
  const env = await online(setup(t, { ringtone: { start: (c) => tones.push(['start', c.id]), stop: (c) => tones.push(['stop', c.id]) } }));
  const { phone, gw } = env;
  const seen = [];
  phone.on('incomingCall', (c) => seen.push(c));
  gw.ws.receive({ type: 'incomingCall', call: 'in-9f', aor: gw.aor, from: 'sip:+15551234@pbx.example.org', displayName: 'ACME Corp' });
  assert.equal(seen.length, 1);
  const call = seen[0];
  assert.equal(call.id, 'in-9f');
  assert.equal(call.direction, 'incoming');
  assert.equal(call.from, 'sip:+15551234@pbx.example.org');
  assert.equal(call.displayName, 'ACME Corp');
  assert.equal(call.aor, gw.aor);
  assert.equal(call.state, 'incoming');
  assert.deepEqual(tones, [['start', 'in-9f']]);
  assert.deepEqual(env.events.filter(([e]) => e === 'call' || e === 'incomingCall').map(([e]) => e), ['call', 'incomingCall']);

  let established = false;
  const a = call.answer().then(() => (established = true));
  assert.deepEqual(tones, [['start', 'in-9f'], ['stop', 'in-9f']], 'answering stops the ringtone');
  assert.equal(call.state, 'connecting');
  await flush();
  assert.equal(gw.sent('answer').length, 0, 'no offer before ICE gathering completed');
  await env.tick(10);
  assert.deepEqual(gw.sent('answer'), [{ type: 'answer', call: 'in-9f', sdp: OFFER + CANDIDATE }]);
  gw.ws.receive({ type: 'media', call: 'in-9f', sdp: 'v=0 answer' });
  await flush();
  assert.deepEqual(FakePeerConnection.instances[0].remoteDescription, { type: 'answer', sdp: 'v=0 answer' });
  assert.ok(call.remoteStream);
  assert.equal(established, false, 'answer() waits for answered');
  gw.ws.receive({ type: 'answered', call: 'in-9f' });
  await a;
  assert.equal(call.state, 'answered');
  assert.rejects(call.answer(), (e) => e.code === 'invalid_state');
  gw.ws.receive({ type: 'ended', call: 'in-9f', reason: 'remote_hangup' });
  assert.deepEqual(await call.ended, { reason: 'remote_hangup' });
  assert.equal(tones.length, 2);
});

test('incoming call: reject (486 by default, 603), or cancelled by the caller (a missed call)', async (t) => {
  const tones = [];
  const env = await online(setup(t, { ringtone: { start: (c) => tones.push(['start', c.id]), stop: (c) => tones.push(['stop', c.id]) } }));
  const { phone, gw } = env;
  gw.handlers.reject = (ws, m) => ws.receive({ type: 'ended', call: m.call, reason: 'hangup' });
  gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: gw.aor, from: 'sip:1@pbx' });
  gw.ws.receive({ type: 'incomingCall', call: 'in-2', aor: gw.aor, from: 'sip:2@pbx' });
  gw.ws.receive({ type: 'incomingCall', call: 'in-3', aor: gw.aor, from: 'sip:3@pbx' });
  const [c1, c2, c3] = phone.calls;
  assert.equal(c1.displayName, null);
  assert.throws(() => c1.reject(404), (e) => e.code === 'invalid_argument');
  assert.deepEqual(await c1.reject(), { reason: 'hangup' });
  assert.deepEqual(await c2.reject(603), { reason: 'hangup' });
  assert.deepEqual(gw.sent('reject'), [
    { type: 'reject', call: 'in-1' },
    { type: 'reject', call: 'in-2', status: 603 },
  ]);
  assert.throws(() => c1.reject(), (e) => e.code === 'invalid_state');
  gw.ws.receive({ type: 'ended', call: 'in-3', reason: 'cancelled' });
  assert.deepEqual(await c3.ended, { reason: 'cancelled' });
  assert.equal(c3.answeredAt, null);
  assert.equal((await rejection(c3.answer())).code, 'invalid_state');
  assert.equal((await rejection(c3.answered)).code, 'cancelled');
  assert.deepEqual(tones, [
    ['start', 'in-1'], ['start', 'in-2'], ['start', 'in-3'],
    ['stop', 'in-1'], ['stop', 'in-2'], ['stop', 'in-3'],
  ]);
  assert.equal(phone.calls.length, 0);
});

test('incoming call: hangup() while ringing declines it', async (t) => {
  const env = await online(setup(t));
  env.gw.handlers.reject = (ws, m) => ws.receive({ type: 'ended', call: m.call, reason: 'hangup' });
  env.gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: env.gw.aor, from: 'sip:1@pbx' });
  const [call] = env.phone.calls;
  assert.deepEqual(await call.hangup(), { reason: 'hangup' });
  assert.deepEqual(env.gw.sent('reject'), [{ type: 'reject', call: 'in-1' }]);
});

test('incoming call: a refused microphone leaves it ringing, and answer() may be tried again', async (t) => {
  const env = await online(setup(t));
  answering(env.gw);
  env.gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: env.gw.aor, from: 'sip:1@pbx' });
  const [call] = env.phone.calls;
  env.mic.fail = 'NotAllowedError';
  assert.equal((await rejection(call.answer())).code, 'microphone_denied');
  assert.equal(call.state, 'incoming');
  assert.equal(env.gw.sent('answer').length, 0);
  env.mic.fail = null;
  const a = call.answer();
  await env.tick(10);
  env.gw.ws.receive({ type: 'answered', call: 'in-1' });
  await a;
  assert.equal(call.state, 'answered');
});

test('incoming call cancelled while the answer is being prepared: answer() rejects, nothing sent', async (t) => {
  const env = await online(setup(t));
  env.gw.ws.receive({ type: 'incomingCall', call: 'in-1', aor: env.gw.aor, from: 'sip:1@pbx' });
  const [call] = env.phone.calls;
  const a = rejection(call.answer());
  await flush();
  env.gw.ws.receive({ type: 'ended', call: 'in-1', reason: 'cancelled' });
  await env.tick(10);
  assert.equal((await a).code, 'cancelled');
  assert.equal(env.gw.sent('answer').length, 0);
  assert.equal(FakePeerConnection.instances[0].closed, true);
});

test('audio output: setSinkId on every audio element, or sink_unsupported', async (t) => {
  const env = await online(setup(t));
  const call = await established(env);
  await env.phone.setSinkId('spk1');
  assert.equal(call.audioElement.sinkId, 'spk1');
  const c2 = await established(env);
  await flush();
  assert.equal(c2.audioElement.sinkId, 'spk1', 'later calls use it too');
  const env2 = await online(setup(t, { audioElement: () => Object.assign(new FakeAudio(), { setSinkId: undefined }) }));
  await established(env2);
  assert.equal((await rejection(env2.phone.setSinkId('spk1'))).code, 'sink_unsupported');
  const devs = await env.phone.devices();
  assert.deepEqual(devs.inputs.map((d) => d.deviceId), ['mic1']);
  assert.deepEqual(devs.outputs.map((d) => d.deviceId), ['spk1']);
});

test('autoplay: false leaves the remote stream to the app; a shared element is released per call', async (t) => {
  let env = await online(setup(t, { autoplay: false }));
  let call = await established(env);
  assert.ok(call.remoteStream);
  assert.equal(call.audioElement, null);
  assert.equal(FakeAudio.instances.length, 0);

  const shared = new FakeAudio();
  env = await online(setup(t, { audioElement: shared }));
  call = await established(env);
  assert.equal(call.audioElement, shared);
  assert.equal(shared.srcObject, call.remoteStream);
  env.gw.ws.receive({ type: 'ended', call: call.id, reason: 'remote_hangup' });
  await call.ended;
  assert.equal(shared.srcObject, null);
});

test('autoplay blocked by the browser is reported as autoplay_blocked', async (t) => {
  const blocked = new FakeAudio();
  blocked.play = () => Promise.reject(new DOMException('user gesture needed', 'NotAllowedError'));
  const env = await online(setup(t, { audioElement: () => blocked }));
  const call = await established(env);
  await flush();
  const err = env.events.filter(([e]) => e === 'error').at(-1)[1];
  assert.equal(err.code, 'autoplay_blocked');
  assert.equal(err.callId, call.id);
});
