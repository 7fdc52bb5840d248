// A scripted gateway behind a fake WebSocket, and fake WebRTC (RTCPeerConnection,
// getUserMedia, audio elements), for the unit tests of siptoken-phone under `node --test`.
// Timers are node:test's mock timers; flush() lets pending promise chains run.

import { Phone } from '../src/siptoken-phone.js';

/** Runs every pending microtask and promise chain (setImmediate is not mocked). */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A gateway: every socket it accepts, every message it got (parsed), and handlers that answer
 * them. Answers are delivered asynchronously (a microtask later), as a real socket would.
 */
export class FakeGateway {
  constructor() {
    this.sockets = [];
    this.aor = 'sip:crm1@sip.example.org';
    this.autoOpen = true;
    this.handlers = {
      login: (ws) => {
        ws.receive({ type: 'registering', aor: this.aor });
        ws.receive({ type: 'registered', aor: this.aor, expires: 600 });
      },
      logout: (ws) => ws.receive({ type: 'unregistered', aor: this.aor }),
      ping: (ws) => ws.receive({ type: 'pong' }),
    };
    const gw = this;
    this.WebSocket = class extends FakeWebSocket {
      constructor(url) {
        super(url, gw);
      }
    };
  }

  /** The newest socket. */
  get ws() {
    return this.sockets[this.sockets.length - 1];
  }

  /** Every message received on every socket, in order, as [socket index, message]. */
  get received() {
    return this.sockets.flatMap((ws, i) => ws.sent.map((m) => [i, m]));
  }

  /** Messages of one type received on the newest socket. */
  sent(type) {
    return this.ws.sent.filter((m) => m.type === type);
  }
}

export class FakeWebSocket {
  constructor(url, gw) {
    this.url = url;
    this.gw = gw;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = null;
    gw.sockets.push(this);
    if (gw.autoOpen) queueMicrotask(() => this.readyState === 0 && this.open());
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('InvalidStateError: socket not open');
    const m = JSON.parse(data);
    this.sent.push(m);
    const h = this.gw.handlers[m.type];
    if (h) queueMicrotask(() => this.readyState === 1 && h(this, m));
  }

  /** The client closes. */
  close(code) {
    this.closedWith = code ?? 1000;
    this.readyState = 3;
  }

  // --- the test's side ---

  open() {
    this.readyState = 1;
    if (this.onopen) this.onopen({});
  }

  /** The gateway sends a message (delivered now). */
  receive(m) {
    if (this.readyState === 1 && this.onmessage) this.onmessage({ data: JSON.stringify(m) });
  }

  /** The connection drops (or the gateway closes it) with this code. */
  drop(code = 1006) {
    this.readyState = 3;
    if (this.onclose) this.onclose({ code });
  }
}

export class FakeTrack {
  constructor() {
    this.kind = 'audio';
    this.enabled = true;
    this.stopped = false;
  }

  stop() {
    this.stopped = true;
  }
}

export class FakeStream {
  constructor(id) {
    this.id = id;
    this.tracks = [new FakeTrack()];
  }

  getTracks() {
    return this.tracks;
  }

  getAudioTracks() {
    return this.tracks;
  }
}

export const OFFER = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 8\r\n';
export const CANDIDATE = 'a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host\r\n';

/** RTCPeerConnection: gathering completes `gatherMs` after setLocalDescription (null: never). */
export class FakePeerConnection extends EventTarget {
  static instances = [];
  static gatherMs = 10;
  static failRemote = false;

  constructor(configuration) {
    super();
    this.configuration = configuration;
    this.iceGatheringState = 'new';
    this.localDescription = null;
    this.remoteDescription = null;
    this.senders = [];
    this.closed = false;
    FakePeerConnection.instances.push(this);
  }

  addTrack(track, stream) {
    this.senders.push({ track, stream });
  }

  async createOffer() {
    return { type: 'offer', sdp: OFFER };
  }

  async setLocalDescription(d) {
    this.localDescription = { type: d.type, sdp: d.sdp };
    this.iceGatheringState = 'gathering';
    const ms = FakePeerConnection.gatherMs;
    if (ms == null) return;
    setTimeout(() => {
      this.localDescription.sdp += CANDIDATE;
      this.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate: { candidate: CANDIDATE } }));
      this.iceGatheringState = 'complete';
      this.dispatchEvent(new Event('icegatheringstatechange'));
      this.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate: null }));
    }, ms);
  }

  async setRemoteDescription(d) {
    if (FakePeerConnection.failRemote) throw new Error('Failed to parse SessionDescription');
    this.remoteDescription = d;
    this.remoteStream = new FakeStream('remote');
    this.dispatchEvent(Object.assign(new Event('track'), { track: this.remoteStream.tracks[0], streams: [this.remoteStream] }));
  }

  close() {
    this.closed = true;
  }
}

/** navigator.mediaDevices: `fail` names the DOMException getUserMedia throws. */
export function fakeMediaDevices() {
  return {
    requests: [],
    streams: [],
    fail: null,
    async getUserMedia(constraints) {
      this.requests.push(constraints);
      if (this.fail) throw new DOMException('refused by the test', this.fail);
      const s = new FakeStream(`mic${this.streams.length + 1}`);
      this.streams.push(s);
      return s;
    },
    async enumerateDevices() {
      return [
        { kind: 'audioinput', deviceId: 'mic1', label: 'Mic' },
        { kind: 'audiooutput', deviceId: 'spk1', label: 'Speaker' },
        { kind: 'videoinput', deviceId: 'cam1', label: 'Camera' },
      ];
    },
  };
}

export class FakeAudio {
  static instances = [];

  constructor() {
    this.srcObject = null;
    this.playing = false;
    this.sinkId = '';
    FakeAudio.instances.push(this);
  }

  play() {
    this.playing = true;
    return Promise.resolve();
  }

  pause() {
    this.playing = false;
  }

  async setSinkId(id) {
    this.sinkId = id;
  }
}

/**
 * A Phone wired to a fresh fake gateway and fake WebRTC, with mock timers on. Every phone
 * event is recorded in `events` as [name, argument].
 */
export function setup(t, options = {}) {
  t.mock.timers.reset(); // a test may set up several phones in turn
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  FakePeerConnection.instances = [];
  FakePeerConnection.gatherMs = 10;
  FakePeerConnection.failRemote = false;
  FakeAudio.instances = [];
  const gw = new FakeGateway();
  const mic = fakeMediaDevices();
  const tokens = [];
  const phone = new Phone({
    url: 'wss://gw.example.org/ws',
    getToken: async () => {
      const token = `CRM:v1.k1.token${tokens.length + 1}`;
      tokens.push(token);
      return token;
    },
    WebSocket: gw.WebSocket,
    RTCPeerConnection: FakePeerConnection,
    mediaDevices: mic,
    audioElement: () => new FakeAudio(),
    ...options,
  });
  const events = [];
  for (const e of ['state', 'registering', 'registered', 'authenticated', 'unregistered', 'registrationLost', 'reconnecting', 'call', 'incomingCall', 'error']) {
    phone.on(e, (x) => events.push([e, x]));
  }
  const tick = async (ms) => {
    await flush();
    t.mock.timers.tick(ms);
    await flush();
  };
  return { phone, gw, mic, tokens, events, tick, states: () => events.filter(([e]) => e === 'state').map(([, s]) => s) };
}

/** Connects the phone of setup() and checks it registered. */
export async function online(env) {
  const p = env.phone.connect();
  await flush();
  await flush();
  await p;
  return env;
}
