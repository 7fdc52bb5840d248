// siptoken-phone: the browser side of siptoken-gateway. A CRM page gives it a function that
// fetches a single-use token from the CRM's backend; the SDK speaks the gateway's WebSocket
// protocol (docs/gateway-protocol.md: login, registration events, calls) and plays the call's
// audio over one RTCPeerConnection per call. No SIP, no password and no storage in the browser.
//
// Hand-written, no dependencies: the protocol is the gateway's own JSON, and WebRTC plumbing
// for an ICE-lite peer (offer, gather every candidate, send it whole) is a few lines that no
// library does for this protocol. Types: siptoken-phone.d.ts (kept in step by the package
// tests). Unit tests: ../test/ (node --test, against a scripted gateway and fake WebRTC).

/** Gateway login errors after which reconnecting with a fresh token cannot help. */
const FATAL = new Set(['token_rejected', 'sip_auth_failed', 'sip_rejected']);
const DTMF = /^[0-9*#A-D]{1,32}$/;

/** An error with the protocol's (or the SDK's) code. */
export class PhoneError extends Error {
  constructor(code, message, fields) {
    super(message || code);
    this.name = 'PhoneError';
    this.code = code;
    if (fields) {
      for (const k of ['detail', 'sipStatus', 'aor', 'callId']) if (fields[k] != null) this[k] = fields[k];
    }
  }
}

/** A gateway `error` message as a PhoneError. */
function gatewayError(m) {
  return new PhoneError(m.code, m.message || `gateway error: ${m.code}${m.detail ? ` (${m.detail})` : ''}`, {
    detail: m.detail,
    sipStatus: m.sipStatus,
    aor: m.aor,
    callId: m.call,
  });
}

/** getUserMedia's DOMException as a PhoneError with a code an app can act on. */
function micError(e) {
  const name = e && e.name;
  const code =
    name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError'
      ? 'microphone_denied'
      : name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError'
        ? 'microphone_not_found'
        : 'microphone_unavailable';
  const text = {
    microphone_denied: 'microphone access was denied',
    microphone_not_found: 'no microphone found',
    microphone_unavailable: 'the microphone could not be opened',
  }[code];
  return new PhoneError(code, `${text}${e && e.message ? `: ${e.message}` : ''}`);
}

/** Small typed event emitter: on() returns the function that removes the listener. */
class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(event, fn) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    const set = this._listeners.get(event);
    if (set) set.delete(fn);
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        // A listener's bug must not break the SDK's state; it still surfaces (console, onerror).
        if (typeof reportError === 'function') reportError(e);
        else
          queueMicrotask(() => {
            throw e;
          });
      }
    }
  }
}

/** Resolves once the connection has gathered every ICE candidate, or after `ms`. */
function iceGathered(pc, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onState);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onState = () => pc.iceGatheringState === 'complete' && done();
    const onCandidate = (e) => e.candidate || done(); // a null candidate ends gathering
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', onState);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

/** One call, outgoing or incoming. Created by the Phone; see siptoken-phone.d.ts. */
export class Call extends Emitter {
  constructor(phone, id, direction, fields) {
    super();
    this._phone = phone;
    this.id = id;
    this.direction = direction;
    this.to = fields.to ?? null;
    this.from = fields.from ?? null;
    this.displayName = fields.displayName ?? null;
    this.aor = fields.aor ?? null;
    this.state = direction === 'incoming' ? 'incoming' : 'connecting';
    this.held = false;
    this.remoteHeld = false;
    this.muted = false;
    this.remoteStream = null;
    this.localStream = null;
    this.peerConnection = null;
    this.audioElement = null;
    this.startedAt = new Date();
    this.answeredAt = null;
    this.endedAt = null;
    this.endInfo = null;
    this._ops = []; // requests waiting for the gateway: { kind, resolve, reject, timer }
    this._sent = false; // the gateway knows this call's offer
    this._tone = null;
    this.answered = new Promise((resolve, reject) => {
      this._answered = { resolve, reject };
    });
    this.answered.catch(() => {}); // rejection is for whoever awaits it, not an unhandled one
    this.ended = new Promise((resolve) => {
      this._resolveEnded = resolve;
    });
  }

  /** Takes an incoming call: microphone, offer, `answer`; resolves once established. */
  async answer() {
    if (this.direction !== 'incoming' || this.state !== 'incoming') {
      throw new PhoneError('invalid_state', `cannot answer a call in state ${this.state}`, { callId: this.id });
    }
    this._setTone(null);
    this._setState('connecting');
    await this._setup({ type: 'answer' });
    await this.answered;
  }

  /** Declines an incoming call (486 Busy Here by default, or 603 Decline). */
  reject(status) {
    if (status !== undefined && status !== 486 && status !== 603) {
      throw new PhoneError('invalid_argument', 'reject(status): status is 486 or 603');
    }
    if (this.direction !== 'incoming' || this._sent || this.state === 'ended') {
      throw new PhoneError('invalid_state', `cannot reject a call in state ${this.state}`, { callId: this.id });
    }
    this._setTone(null);
    this._send({ type: 'reject', ...(status && { status }) });
    this._endAfterTimeout('hangup');
    return this.ended;
  }

  /** Ends the call whatever its state: CANCEL before the answer, BYE after, reject if ringing here. */
  hangup() {
    if (this.state === 'ended') return this.ended;
    this._setTone(null);
    if (this.direction === 'incoming' && !this._sent) {
      // Ringing here, or answering with the offer not out yet: decline it.
      if (this._trySend({ type: 'reject' }) && this.state === 'incoming') this._endAfterTimeout('hangup');
      else this._end('hangup');
    } else if (this._sent && this._trySend({ type: 'hangup' })) {
      this._endAfterTimeout('hangup');
    } else {
      this._end('hangup'); // still gathering (the gateway never heard of it), or no socket
    }
    return this.ended;
  }

  hold() {
    return this._holdRequest('hold', true);
  }

  unhold() {
    return this._holdRequest('unhold', false);
  }

  /** Sends DTMF digits (0-9 * # A-D, at most 32) as RFC 4733 events through the gateway. */
  sendDtmf(digits) {
    const d = typeof digits === 'string' ? digits.toUpperCase() : '';
    if (!DTMF.test(d)) {
      throw new PhoneError('invalid_dtmf', 'DTMF digits are 1 to 32 of 0-9 * # A-D', { callId: this.id });
    }
    if (this.state !== 'answered' && this.state !== 'early') {
      throw new PhoneError('invalid_state', `cannot send DTMF in state ${this.state}`, { callId: this.id });
    }
    this._send({ type: 'dtmf', digits: d });
  }

  /** Blind transfer (REFER); resolves on `transferring`, `ended` with `transferred` follows. */
  async transfer(to) {
    if (typeof to !== 'string' || !to.trim()) {
      throw new PhoneError('invalid_target', 'transfer(to) needs a number or SIP URI', { callId: this.id });
    }
    this._needState('answered', 'transfer');
    this._send({ type: 'transfer', to: to.trim() });
    await this._op('transfer');
  }

  /** Mutes (or unmutes) the microphone for this call; nothing is sent to the gateway. */
  mute(on = true) {
    this.muted = !!on;
    this._applyTrackState();
    this._emit('mute', this.muted);
  }

  // --- internals -------------------------------------------------------------------------------

  _needState(state, what) {
    if (this.state !== state) {
      throw new PhoneError('invalid_state', `cannot ${what} a call in state ${this.state}`, { callId: this.id });
    }
  }

  async _holdRequest(kind, on) {
    this._needState('answered', kind);
    if (this.held === on) return;
    this._send({ type: kind });
    await this._op(kind);
  }

  _send(m) {
    this._phone._send({ ...m, call: this.id });
  }

  /** Sends if the socket is open; a closed socket hangs every call up at the gateway anyway. */
  _trySend(m) {
    try {
      this._send(m);
      return true;
    } catch {
      return false;
    }
  }

  _setState(state) {
    if (this.state === state || this.state === 'ended') return;
    this.state = state;
    this._emit('state', state);
  }

  /** A request the gateway will answer with a message (`kind`) or an `error` for this call. */
  _op(kind) {
    return new Promise((resolve, reject) => {
      const op = { kind, resolve, reject };
      op.timer = setTimeout(() => {
        this._ops.splice(this._ops.indexOf(op), 1);
        reject(new PhoneError('timeout', `no answer from the gateway to ${kind}`, { callId: this.id }));
      }, this._phone._options.requestTimeoutMs);
      this._ops.push(op);
    });
  }

  _settle(kind, value) {
    const i = this._ops.findIndex((o) => o.kind === kind);
    if (i < 0) return;
    const [op] = this._ops.splice(i, 1);
    clearTimeout(op.timer);
    op.resolve(value);
  }

  /** Microphone, peer connection, complete offer, `call`/`answer`, then the gateway's answer. */
  async _setup(request) {
    const phone = this._phone;
    let stream = null;
    let pc = null;
    try {
      stream = this.localStream = await phone._microphone();
      this._abortIfEnded();
      pc = this.peerConnection = new phone._options.RTCPeerConnection(phone._options.rtcConfiguration);
      pc.addEventListener('track', (e) => this._onTrack(e));
      for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
      this._applyTrackState();
      await pc.setLocalDescription(await pc.createOffer());
      this._abortIfEnded();
      await Promise.race([iceGathered(pc, phone._options.iceGatheringTimeoutMs), this.ended]);
      this._abortIfEnded();
      this._send({ ...request, sdp: pc.localDescription.sdp });
      this._sent = true;
      const answer = await this._op('media'); // messages arrive as events, never before this line
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } catch (e) {
      const err = e instanceof PhoneError ? e : new PhoneError('webrtc_failed', `WebRTC: ${e && e.message}`, { callId: this.id });
      if (this.state !== 'ended') {
        if (this.direction === 'incoming' && !this._sent) {
          // Not announced: the call still rings here, and answer() may be tried again.
          for (const t of stream ? stream.getTracks() : []) t.stop();
          if (pc) pc.close();
          this.localStream = this.peerConnection = null;
          this.state = 'incoming';
          this._emit('state', 'incoming');
        } else {
          if (this._sent) this._trySend({ type: 'hangup' });
          this._end('failed');
        }
      }
      throw err;
    }
  }

  _abortIfEnded() {
    if (this.state === 'ended') {
      throw new PhoneError(this.endInfo.reason, `call ended: ${this.endInfo.reason}`, { callId: this.id });
    }
  }

  _onTrack(e) {
    const stream = (e.streams && e.streams[0]) || new MediaStream([e.track]);
    if (this.remoteStream === stream) return;
    this.remoteStream = stream;
    this._phone._play(this, stream);
    this._emit('remoteStream', stream);
  }

  /** The microphone sends while neither muted nor held here. */
  _applyTrackState() {
    for (const t of this.localStream ? this.localStream.getAudioTracks() : []) t.enabled = !this.muted && !this.held;
  }

  /** Starts or stops the ringtone/ringback for this call (each start matched by one stop). */
  _setTone(kind) {
    if (this._tone === kind) return;
    if (this._tone) this._phone._tone(this._tone, this, false);
    this._tone = kind;
    if (kind) this._phone._tone(kind, this, true);
  }

  /** Ends the call locally if the gateway does not report `ended` in time. */
  _endAfterTimeout(reason) {
    const timer = setTimeout(() => this._end(reason), this._phone._options.requestTimeoutMs);
    this.ended.then(() => clearTimeout(timer));
  }

  /** A gateway message about this call. */
  _message(m) {
    switch (m.type) {
      case 'media':
        this._settle('media', m);
        break;
      case 'ringing':
        this._setState('ringing');
        this._setTone('ringback');
        this._emit('ringing');
        break;
      case 'earlyMedia':
        this._setState('early');
        this._setTone(null);
        this._emit('earlyMedia');
        break;
      case 'answered':
        this._setTone(null);
        this.answeredAt = new Date();
        this._setState('answered');
        this._answered.resolve();
        this._emit('answered');
        break;
      case 'held':
      case 'resumed': {
        const on = m.type === 'held';
        const by = m.by === 'remote' ? 'remote' : 'local';
        if (by === 'local') {
          this.held = on;
          this._applyTrackState();
          this._settle(on ? 'hold' : 'unhold');
        } else {
          this.remoteHeld = on;
        }
        this._emit(m.type, { by });
        break;
      }
      case 'transferring':
        this._settle('transfer');
        this._emit('transferring');
        break;
      case 'ended':
        this._end(m.reason, m.sipStatus);
        break;
      case 'error': {
        const err = gatewayError(m);
        const op = this._ops.shift();
        if (op) {
          clearTimeout(op.timer);
          if (op.kind === 'media') this._sent = false; // the offer was refused: no call there
          op.reject(err);
        } else {
          this._emit('error', err);
          this._phone._emit('error', err);
        }
        if (m.code === 'unknown_call') this._end('failed'); // the gateway has no such call (any more)
        break;
      }
    }
  }

  /** Ends the call exactly once: releases media, rejects what waits, resolves `ended`. */
  _end(reason, sipStatus) {
    if (this.state === 'ended') return;
    const info = sipStatus != null ? { reason, sipStatus } : { reason };
    this.state = 'ended';
    this.endedAt = new Date();
    this.endInfo = info;
    this._setTone(null);
    for (const t of this.localStream ? this.localStream.getTracks() : []) t.stop();
    if (this.peerConnection) this.peerConnection.close();
    this._phone._release(this);
    const err = new PhoneError(reason, `call ended: ${reason}`, { sipStatus, callId: this.id });
    for (const op of this._ops.splice(0)) {
      clearTimeout(op.timer);
      op.reject(err);
    }
    this._answered.reject(err);
    this._resolveEnded(info);
    this._emit('state', 'ended');
    this._emit('ended', info);
  }
}

const DEFAULT_RECONNECT = { initialDelayMs: 1000, maxDelayMs: 30000, factor: 2, jitter: 0.5, maxAttempts: Infinity };

/** The phone: one gateway WebSocket, one SIP account. See siptoken-phone.d.ts. */
export class Phone extends Emitter {
  constructor(options) {
    super();
    if (!options || typeof options.url !== 'string' || typeof options.getToken !== 'function') {
      throw new TypeError('new Phone({ url, getToken }): url is the gateway WebSocket, getToken a function');
    }
    const g = globalThis;
    this._options = {
      autoplay: true,
      iceGatheringTimeoutMs: 2000,
      requestTimeoutMs: 20000,
      connectTimeoutMs: 45000,
      keepaliveMs: 30000,
      rtcConfiguration: { iceServers: [] }, // the gateway is ICE-lite with a public host candidate
      WebSocket: g.WebSocket,
      RTCPeerConnection: g.RTCPeerConnection,
      mediaDevices: g.navigator && g.navigator.mediaDevices,
      ...options,
    };
    const r = this._options.reconnect;
    this._reconnect = r === false ? null : { ...DEFAULT_RECONNECT, ...r };
    this.audioConstraints = {
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      ...options.audio,
    };
    this.state = 'offline';
    this.aor = null;
    this.expires = null;
    this._calls = new Map();
    this._seq = 0;
    this._ws = null;
    this._wanted = false; // the app asked to be online
    this._login = null; // { resolve, reject } while a login waits for its answer
    this._logout = null;
    this._pings = [];
    this._sinkId = options.sinkId || null;
    this._tones = {};
  }

  /** The calls in progress. */
  get calls() {
    return [...this._calls.values()];
  }

  /** Opens the socket and logs in; resolves once registered (or authenticated). */
  connect() {
    if (this.state === 'registered') return Promise.resolve();
    if (this.state === 'reconnecting') return this._nextState();
    if (!this._connecting) {
      this._wanted = true;
      this._setState('connecting');
      this._connecting = this._attempt().then(
        () => {
          this._connecting = null;
          this._online();
        },
        (e) => {
          this._connecting = null;
          if (this._wanted) {
            this._wanted = false;
            this._closeSocket(1000);
            this._setState('offline');
          }
          throw e;
        },
      );
    }
    return this._connecting;
  }

  /** Hangs up every call, logs out, closes the socket; the state becomes `offline`. */
  disconnect() {
    if (!this._disconnecting) this._disconnecting = this._disconnect().finally(() => (this._disconnecting = null));
    return this._disconnecting;
  }

  async _disconnect() {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    if (this._retryWake) this._retryWake();
    const ws = this._ws;
    if (this._login) this._login.reject(new PhoneError('disconnected', 'disconnected by the application'));
    if (ws && ws.readyState === 1 && this.state === 'registered') {
      for (const call of this.calls) call.hangup();
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, this._options.requestTimeoutMs);
        this._logout = () => {
          clearTimeout(timer);
          resolve();
        };
        this._send({ type: 'logout' });
      });
      this._logout = null;
    }
    this._closeSocket(1000);
    this._dropped(new PhoneError('disconnected', 'disconnected by the application'), 'hangup');
    this.aor = this.expires = null;
    this._setState('offline');
  }

  /** Places a call; resolves once the gateway answered the offer (before the far end answers). */
  async call(to, options = {}) {
    if (typeof to !== 'string' || !to.trim()) throw new PhoneError('invalid_target', 'call(to) needs a number or SIP URI');
    if (this.state !== 'registered') throw new PhoneError('not_logged_in', `cannot call while ${this.state}`);
    const call = new Call(this, `c${++this._seq}`, 'outgoing', { to: to.trim(), aor: options.aor || this.aor });
    this._calls.set(call.id, call);
    this._emit('call', call);
    await call._setup({ type: 'call', to: call.to, ...(options.aor && { aor: options.aor }) });
    return call;
  }

  /** Liveness check of the gateway: resolves with the round trip in milliseconds. */
  ping() {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      this._send({ type: 'ping' });
      this._pings.push({ resolve: () => resolve(Date.now() - t0), reject });
    });
  }

  /** Chooses the audio output device (HTMLMediaElement.setSinkId) for calls and tones. */
  async setSinkId(deviceId) {
    const els = [...this.calls.map((c) => c.audioElement), ...Object.values(this._tones).map((t) => t.el)].filter(Boolean);
    const proto = globalThis.HTMLMediaElement && globalThis.HTMLMediaElement.prototype;
    if (els.some((el) => typeof el.setSinkId !== 'function') || (proto && !('setSinkId' in proto))) {
      throw new PhoneError('sink_unsupported', 'this browser cannot choose the audio output device (setSinkId)');
    }
    await Promise.all(els.map((el) => el.setSinkId(deviceId)));
    this._sinkId = deviceId;
  }

  /** The audio devices (labels are empty until microphone permission was granted). */
  async devices() {
    const md = this._options.mediaDevices;
    if (!md || !md.enumerateDevices) throw new PhoneError('media_unsupported', 'navigator.mediaDevices is not available');
    const all = await md.enumerateDevices();
    return { inputs: all.filter((d) => d.kind === 'audioinput'), outputs: all.filter((d) => d.kind === 'audiooutput') };
  }

  // --- connection ------------------------------------------------------------------------------

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', state);
  }

  /** Resolves when the state next becomes `registered`, rejects when it becomes `offline`. */
  _nextState() {
    return new Promise((resolve, reject) => {
      const off = this.on('state', (s) => {
        if (s === 'registered') resolve();
        else if (s === 'offline') reject(this._lastError || new PhoneError('disconnected', 'offline'));
        else return;
        off();
      });
    });
  }

  _online() {
    this._setState('registered');
    this._keepalive();
  }

  /** One connection attempt: socket, fresh token, login, registration. */
  _attempt() {
    return new Promise((resolve, reject) => {
      const fail = (e) => {
        clearTimeout(timer);
        this._login = null;
        reject(e);
      };
      const timer = setTimeout(() => {
        this._closeSocket(4000);
        fail(new PhoneError('timeout', 'no registration within connectTimeoutMs'));
      }, this._options.connectTimeoutMs);
      let ws;
      try {
        ws = this._ws = new this._options.WebSocket(this._options.url);
      } catch (e) {
        return fail(new PhoneError('connection_failed', `cannot open the WebSocket: ${e.message}`));
      }
      this._login = { resolve: () => (clearTimeout(timer), (this._login = null), resolve()), reject: fail };
      ws.onmessage = (e) => ws === this._ws && this._receive(e.data);
      ws.onclose = (e) => ws === this._ws && this._closed(e.code);
      ws.onopen = async () => {
        let token;
        try {
          token = await this._options.getToken();
          if (typeof token !== 'string' || !token.trim()) throw new Error('getToken() returned no token');
        } catch (e) {
          this._closeSocket(1000);
          return this._login && this._login.reject(new PhoneError('token_unavailable', `getToken() failed: ${e.message}`));
        }
        if (ws === this._ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'login', token: token.trim() }));
      };
    });
  }

  /** Closes the current socket (its events are ignored from now on). */
  _closeSocket(code) {
    const ws = this._ws;
    this._ws = null;
    clearInterval(this._keepaliveTimer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(code);
      } catch {
        // already closed
      }
    }
  }

  /** The socket closed under us. */
  _closed(code) {
    this._ws = null;
    const err = new PhoneError('connection_failed', `the WebSocket closed (code ${code})`);
    if (this._login) return this._login.reject(err); // an attempt in progress fails
    if (this._logout) return this._logout(); // disconnect() finishes the job
    this._lost(err);
  }

  /** The session is gone (socket dropped, registration lost): end calls, reconnect. */
  _lost(err) {
    this._closeSocket(1000);
    const wasOnline = this.state === 'registered';
    this._dropped(err, 'logged_out');
    if (wasOnline && this._wanted && this._reconnect) this._reconnectLoop();
    else if (wasOnline) {
      this._wanted = false;
      this._setState('offline');
    }
  }

  /** Ends the calls and waiting pings after the session ended. */
  _dropped(err, reason) {
    for (const p of this._pings.splice(0)) p.reject(err);
    for (const call of this.calls) call._end(reason);
  }

  /** Backoff delay for the attempt (1-based): exponential, capped, minus up to `jitter` of it. */
  _delay(attempt) {
    const r = this._reconnect;
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** (attempt - 1));
    return Math.round(base * (1 - r.jitter * Math.random()));
  }

  async _reconnectLoop() {
    this._setState('reconnecting');
    for (let attempt = 1; this._wanted; attempt++) {
      const delayMs = this._delay(attempt);
      this._emit('reconnecting', { attempt, delayMs });
      await new Promise((wake) => {
        this._retryWake = wake;
        this._retryTimer = setTimeout(wake, delayMs);
      });
      if (!this._wanted) return;
      try {
        await this._attempt();
        if (!this._wanted) return;
        return this._online();
      } catch (e) {
        if (!this._wanted) return; // disconnect() during the attempt
        this._closeSocket(1000);
        this._lastError = e;
        this._emit('error', e);
        if (FATAL.has(e.code) || attempt >= this._reconnect.maxAttempts) {
          this._wanted = false;
          this._setState('offline');
        }
      }
    }
  }

  /** Application-level pings: a socket that does not answer one before the next is dead. */
  _keepalive() {
    const ms = this._options.keepaliveMs;
    clearInterval(this._keepaliveTimer);
    if (!ms) return;
    let waiting = false;
    this._keepaliveTimer = setInterval(() => {
      if (waiting) return this._lost(new PhoneError('connection_failed', 'the gateway stopped answering pings'));
      waiting = true;
      this.ping().then(
        () => (waiting = false),
        () => {},
      );
    }, ms);
  }

  _send(m) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) throw new PhoneError('disconnected', 'not connected to the gateway');
    ws.send(JSON.stringify(m));
  }

  /** One message from the gateway. */
  _receive(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (!m || typeof m.type !== 'string') return;
    this._emit('message', m);
    const call = m.call != null && this._calls.get(m.call);
    if (call) return call._message(m);
    switch (m.type) {
      case 'registering':
        this.aor = m.aor;
        this._emit('registering', { aor: m.aor });
        break;
      case 'registered':
      case 'authenticated':
        this.aor = m.aor;
        this.expires = m.type === 'registered' ? m.expires : null;
        this._emit(m.type, m.type === 'registered' ? { aor: m.aor, expires: m.expires } : { aor: m.aor });
        if (this._login) this._login.resolve();
        break;
      case 'unregistered':
        this._emit('unregistered', { aor: m.aor });
        if (this._logout) this._logout();
        else this._lost(new PhoneError('connection_failed', 'the gateway unregistered the account'));
        break;
      case 'registrationLost': {
        const { aor, code, message, sipStatus } = m;
        this._emit('registrationLost', sipStatus != null ? { aor, code, message, sipStatus } : { aor, code, message });
        this._lost(gatewayError(m));
        break;
      }
      case 'pong': {
        const p = this._pings.shift();
        if (p) p.resolve();
        break;
      }
      case 'incomingCall': {
        if (typeof m.call !== 'string') break;
        const c = new Call(this, m.call, 'incoming', m);
        this._calls.set(c.id, c);
        this._emit('call', c);
        c._setTone('ringtone');
        this._emit('incomingCall', c);
        break;
      }
      case 'error': {
        const err = gatewayError(m);
        if (this._login && !m.call) this._login.reject(err);
        else if (this._logout && m.code === 'not_logged_in') this._logout();
        else this._emit('error', err);
        break;
      }
    }
  }

  // --- media -----------------------------------------------------------------------------------

  async _microphone() {
    const md = this._options.mediaDevices;
    if (!md || !md.getUserMedia) {
      throw new PhoneError('media_unsupported', 'no microphone API: the page must be served over https:// (or from localhost)');
    }
    try {
      return await md.getUserMedia({ audio: this.audioConstraints, video: false });
    } catch (e) {
      throw micError(e);
    }
  }

  /** Plays a call's remote audio, unless { autoplay: false }. */
  _play(call, stream) {
    const opt = this._options;
    if (!opt.autoplay) return;
    const el = typeof opt.audioElement === 'function' ? opt.audioElement(call) : opt.audioElement || this._newAudio();
    if (!el) return;
    call.audioElement = el;
    el.autoplay = true;
    el.srcObject = stream;
    if (this._sinkId && el.setSinkId) el.setSinkId(this._sinkId).catch(() => {});
    const played = el.play && el.play();
    if (played && played.catch) {
      played.catch((e) => {
        if (e && e.name === 'NotAllowedError') {
          this._emit('error', new PhoneError('autoplay_blocked', 'the browser blocked audio playback until the user interacts with the page', { callId: call.id }));
        }
      });
    }
  }

  _newAudio() {
    return typeof document !== 'undefined' ? document.createElement('audio') : null;
  }

  /** Detaches a finished call from the phone and from its audio element. */
  _release(call) {
    this._calls.delete(call.id);
    const el = call.audioElement;
    if (el && el.srcObject === call.remoteStream) {
      if (el.pause) el.pause();
      el.srcObject = null;
    }
  }

  /** Ringtone and ringback: the app's hooks, or a looping audio file played while any call needs it. */
  _tone(kind, call, on) {
    const hook = this._options[kind];
    if (!hook) return;
    if (typeof hook !== 'string') return on ? hook.start && hook.start(call) : hook.stop && hook.stop(call);
    let t = this._tones[kind];
    if (!t) {
      const el = this._newAudio();
      if (!el) return;
      el.src = hook;
      el.loop = true;
      if (this._sinkId && el.setSinkId) el.setSinkId(this._sinkId).catch(() => {});
      t = this._tones[kind] = { el, calls: new Set() };
    }
    const before = t.calls.size;
    t.calls[on ? 'add' : 'delete'](call);
    if (!before && t.calls.size) t.el.play().catch(() => {});
    else if (before && !t.calls.size) {
      t.el.pause();
      t.el.currentTime = 0;
    }
  }
}
