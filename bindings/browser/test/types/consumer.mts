// A CRM front end written against the installed package, type-checked with `tsc --strict`
// (scripts/ci/35-browser-sdk.sh; with moduleResolution bundler and node16). Never run: it shows
// that the declarations cover the whole API, and the @ts-expect-error lines show that they are
// precise (a wrong event name, listener signature or argument is an error, not `any`).

import { Phone, PhoneError, Call } from 'siptoken-phone';
import type {
  CallState,
  EndInfo,
  EndReason,
  ErrorCode,
  GatewayErrorCode,
  KnownEndReason,
  LocalErrorCode,
  PhoneOptions,
  PhoneState,
  ToneHook,
} from 'siptoken-phone';

declare function openClientCard(from: string | null, name: string | null): void;

const ringtone: ToneHook = { start: (c: Call) => void c.id, stop: () => {} };
const options: PhoneOptions = {
  url: 'wss://gw.example.org/ws',
  getToken: () => fetch('/sip-token').then((r) => r.text()),
  reconnect: { initialDelayMs: 500, maxDelayMs: 20_000, factor: 2, jitter: 0.3, maxAttempts: 50 },
  audio: { echoCancellation: true, noiseSuppression: true, deviceId: 'default' },
  autoplay: true,
  audioElement: (call: Call) => document.createElement('audio'),
  sinkId: 'default',
  ringtone,
  ringback: '/sounds/ringback.ogg',
  iceGatheringTimeoutMs: 1500,
  requestTimeoutMs: 15_000,
  connectTimeoutMs: 30_000,
  keepaliveMs: 25_000,
  rtcConfiguration: { iceServers: [] },
};
const phone = new Phone(options);

phone.on('incomingCall', (call) => {
  openClientCard(call.from, call.displayName);
  void call.answer();
});
const off: () => void = phone.on('state', (s) => {
  const state: PhoneState = s;
  if (state === 'reconnecting') console.log('reconnecting');
});
off();
phone.on('registered', ({ aor, expires }) => console.log(aor.toUpperCase(), expires.toFixed()));
phone.on('registrationLost', ({ code, sipStatus }) => console.log(code, sipStatus ?? 0));
phone.on('reconnecting', ({ attempt, delayMs }) => console.log(attempt + delayMs));
phone.on('error', (e) => console.log(e.code, e.message));
phone.on('message', (m) => console.log(m.type));

async function main(): Promise<void> {
  try {
    await phone.connect();
  } catch (e) {
    if (e instanceof PhoneError) {
      const code: ErrorCode = e.code;
      if (e.code === 'token_rejected') console.log(e.detail);
      if (e.code === 'sip_auth_failed') console.log(e.sipStatus, e.aor);
      console.log(code);
    }
  }
  const call = await phone.call('+15551234');
  await call.answered;
  const stream: MediaStream | null = call.remoteStream;
  const pc: RTCPeerConnection | null = call.peerConnection;
  await pc?.getStats();
  await call.hold();
  await call.unhold();
  call.sendDtmf('12#');
  await call.transfer('1003');
  call.mute(true);
  call.mute();
  const info: EndInfo = await call.hangup();
  const { reason, sipStatus } = await call.ended;
  const r: EndReason = reason;
  if (reason === 'busy') console.log(sipStatus, r, info);
  const state: CallState = call.state;
  const dir: 'outgoing' | 'incoming' = call.direction;
  const answeredAt: Date | null = call.answeredAt;
  call.on('held', ({ by }) => console.log(by === 'remote'));
  call.on('ended', (i) => console.log(i.reason));
  call.on('remoteStream', (s) => console.log(s.id));
  console.log(stream, state, dir, answeredAt, phone.calls.length, phone.aor, phone.expires);
  await phone.setSinkId('speakers');
  const { inputs, outputs } = await phone.devices();
  console.log(inputs[0]?.label, outputs.length, await phone.ping());
  phone.audioConstraints = { deviceId: inputs[0]?.deviceId };
  await phone.disconnect();

  const known: KnownEndReason = 'transferred';
  const gw: GatewayErrorCode = 'call_limit';
  const local: LocalErrorCode = 'microphone_denied';
  const err = new PhoneError('microphone_not_found', 'no microphone');
  console.log(known, gw, local, err.code);

  // Precise types: each of these is an error.
  // @ts-expect-error no such event
  phone.on('ringing', () => {});
  // @ts-expect-error the state listener gets a PhoneState
  phone.on('state', (s: number) => s);
  // @ts-expect-error reject takes 486 or 603
  await call.reject(404);
  // @ts-expect-error url is required
  new Phone({ getToken: () => 't' });
  // @ts-expect-error 'ringing' is not a PhoneState
  const bad: PhoneState = 'ringing';
  // @ts-expect-error calls are made by the phone
  new Call();
  // @ts-expect-error read-only
  call.state = 'ended';
  console.log(bad);
}
void main();
