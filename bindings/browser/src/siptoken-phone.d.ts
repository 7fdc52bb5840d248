// Types of siptoken-phone (hand-written; the package tests type-check a consumer against them
// with `tsc --strict` and check that every name here exists at run time).
//
// Message and code names are the gateway's WebSocket protocol (docs/gateway-protocol.md), a
// public contract that grows additively: code unions end in `(string & {})`, so a code a newer
// gateway adds still type-checks while the known ones autocomplete and narrow.

/** Where the phone's session stands. */
export type PhoneState = 'connecting' | 'registered' | 'reconnecting' | 'offline';

/** Error codes the gateway sends in `error` and `registrationLost` messages. */
export type GatewayErrorCode =
  | 'bad_request'
  | 'token_rejected'
  | 'replayed'
  | 'sip_auth_failed'
  | 'sip_rejected'
  | 'sip_timeout'
  | 'sip_unreachable'
  | 'rate_limited'
  | 'session_limit'
  | 'not_logged_in'
  | 'idle_timeout'
  | 'store_unavailable'
  | 'unknown_call'
  | 'call_limit'
  | 'invalid_target'
  | 'invalid_sdp';

/** Why a call ended (`ended.reason`). */
export type KnownEndReason =
  | 'hangup'
  | 'remote_hangup'
  | 'busy'
  | 'declined'
  | 'no_answer'
  | 'not_found'
  | 'cancelled'
  | 'unsupported_media'
  | 'transferred'
  | 'media_timeout'
  | 'logged_out'
  | 'failed';

/** A call's end reason: a known one, or one a newer gateway added. */
export type EndReason = KnownEndReason | (string & {});

/** Errors the SDK itself raises (never sent by the gateway). */
export type LocalErrorCode =
  /** getUserMedia: the user or a policy refused the microphone. */
  | 'microphone_denied'
  /** getUserMedia: no microphone (or none matching `audio.deviceId`). */
  | 'microphone_not_found'
  /** getUserMedia: the microphone exists but cannot be opened (in use, hardware error). */
  | 'microphone_unavailable'
  /** No navigator.mediaDevices: not a secure context (https:// or localhost), or no WebRTC. */
  | 'media_unsupported'
  /** setSinkId is not supported by this browser. */
  | 'sink_unsupported'
  /** The browser refused to play the call's audio before a user gesture. */
  | 'autoplay_blocked'
  /** The WebSocket could not be opened, or closed before the login completed. */
  | 'connection_failed'
  /** The operation needs a socket and there is none; or disconnect() interrupted it. */
  | 'disconnected'
  /** getToken() threw, rejected, or returned no token. */
  | 'token_unavailable'
  /** No answer from the gateway in time (connectTimeoutMs, requestTimeoutMs). */
  | 'timeout'
  /** RTCPeerConnection failed (offer, or the gateway's answer could not be applied). */
  | 'webrtc_failed'
  /** sendDtmf: not 1–32 of 0-9 * # A-D. */
  | 'invalid_dtmf'
  /** The call is not in a state that allows this (e.g. hold before it is answered). */
  | 'invalid_state'
  /** A bad argument (e.g. reject(404)). */
  | 'invalid_argument';

/**
 * Every `PhoneError.code`: a gateway error code, an end reason (a call's promises reject with
 * the reason it ended for), or a local code.
 */
export type ErrorCode = GatewayErrorCode | KnownEndReason | LocalErrorCode | (string & {});

/** The Error every promise of the SDK rejects with. */
export declare class PhoneError extends Error {
  constructor(code: ErrorCode, message?: string, fields?: { detail?: string; sipStatus?: number; aor?: string; callId?: string });
  readonly name: 'PhoneError';
  /** The protocol's code (`token_rejected`, `busy`, …) or a local one (`microphone_denied`, …). */
  readonly code: ErrorCode;
  /** For `token_rejected`: the core library's reason (`expired`, `bad_signature`, …). */
  readonly detail?: string;
  /** The SIP status that decided it, when one did. */
  readonly sipStatus?: number;
  /** The account concerned, for SIP errors. */
  readonly aor?: string;
  /** The call concerned, for call errors. */
  readonly callId?: string;
}

/** How `call.ended` resolves. */
export interface EndInfo {
  reason: EndReason;
  /** The SIP status that decided the end, when one did (e.g. 486). */
  sipStatus?: number;
}

/** Hooks for the ringtone (incoming call ringing here) or ringback (the far end rings). */
export interface ToneHook {
  start(call: Call): void;
  stop(call: Call): void;
}

/** Reconnect policy after a dropped socket or a lost registration. */
export interface ReconnectOptions {
  /** Delay before the first attempt [1000]. */
  initialDelayMs?: number;
  /** Cap on the delay [30000]. */
  maxDelayMs?: number;
  /** Growth per attempt [2]. */
  factor?: number;
  /** Random fraction (0–1) taken off each delay, so operators do not reconnect in step [0.5]. */
  jitter?: number;
  /** Attempts before giving up (state `offline`) [Infinity]. */
  maxAttempts?: number;
}

export interface PhoneOptions {
  /** The gateway's WebSocket, e.g. `wss://gw.example.org/ws`. */
  url: string;
  /** A fresh single-use token from the CRM's backend; called for every (re)connection. */
  getToken: () => string | Promise<string>;
  /** Reconnect policy, or `false` to go `offline` when the session drops. */
  reconnect?: ReconnectOptions | false;
  /** Microphone constraints, merged over `{ echoCancellation, noiseSuppression, autoGainControl: true }`. */
  audio?: MediaTrackConstraints;
  /** Play the far end's audio [true]; `false` leaves `call.remoteStream` to the app. */
  autoplay?: boolean;
  /** The element(s) to play calls in; default: a detached `<audio>` per call, made by the SDK. */
  audioElement?: HTMLMediaElement | ((call: Call) => HTMLMediaElement);
  /** Audio output device for calls and tones (setSinkId), where supported. */
  sinkId?: string;
  /** Ringtone for incoming calls: an audio file URL played in a loop, or hooks. */
  ringtone?: string | ToneHook;
  /** Ringback while the far end rings (before early media): a URL, or hooks. */
  ringback?: string | ToneHook;
  /** Longest wait for ICE gathering before the offer goes out anyway [2000]. */
  iceGatheringTimeoutMs?: number;
  /** Longest wait for the gateway's answer to a call request (media, hold, transfer, logout) [20000]. */
  requestTimeoutMs?: number;
  /** Longest wait from opening the socket to `registered` [45000]. */
  connectTimeoutMs?: number;
  /** Interval of application pings; a missed pong drops and reconnects the socket [30000]; 0: off. */
  keepaliveMs?: number;
  /** RTCPeerConnection configuration [{ iceServers: [] }: the gateway is ICE-lite]. */
  rtcConfiguration?: RTCConfiguration;
  /** Replacements for the browser's globals (tests, other runtimes). */
  WebSocket?: { new (url: string): WebSocket };
  RTCPeerConnection?: { new (configuration?: RTCConfiguration): RTCPeerConnection };
  mediaDevices?: Pick<MediaDevices, 'getUserMedia' | 'enumerateDevices'>;
}

/** A gateway message (every one arrives on the `message` event first). */
export interface GatewayMessage {
  type: string;
  [field: string]: unknown;
}

export interface PhoneEvents {
  /** The session's state changed. */
  state: (state: PhoneState) => void;
  /** The token was accepted; the REGISTER is in flight. */
  registering: (info: { aor: string }) => void;
  /** Registered, and again after every refresh. */
  registered: (info: { aor: string; expires: number }) => void;
  /** Logged in with a `registered="false"` token (no REGISTER); counts as `registered` state. */
  authenticated: (info: { aor: string }) => void;
  /** The binding was removed (logout or gateway shutdown). */
  unregistered: (info: { aor: string }) => void;
  /** A refresh failed for good; the SDK reconnects with a fresh token. */
  registrationLost: (info: { aor: string; code: GatewayErrorCode | (string & {}); message?: string; sipStatus?: number }) => void;
  /** A reconnection attempt is scheduled in `delayMs`. */
  reconnecting: (info: { attempt: number; delayMs: number }) => void;
  /** A call was created: by `phone.call()` (before its offer is out) or by an incoming call. */
  call: (call: Call) => void;
  /** An incoming call rings: show `call.from` / `call.displayName`, then `answer()` or `reject()`. */
  incomingCall: (call: Call) => void;
  /** An error no promise reports: a failed reconnection attempt, `idle_timeout`, `autoplay_blocked`, … */
  error: (error: PhoneError) => void;
  /** Every message from the gateway, as received (for protocol additions). */
  message: (message: GatewayMessage) => void;
}

export type CallDirection = 'outgoing' | 'incoming';

/**
 * `incoming` (ringing here) → `connecting` (offer out, waiting for the gateway) → `ringing` →
 * `early` (early media) → `answered` → `ended`.
 */
export type CallState = 'incoming' | 'connecting' | 'ringing' | 'early' | 'answered' | 'ended';

export type HoldParty = 'local' | 'remote';

export interface CallEvents {
  state: (state: CallState) => void;
  ringing: () => void;
  earlyMedia: () => void;
  answered: () => void;
  held: (info: { by: HoldParty }) => void;
  resumed: (info: { by: HoldParty }) => void;
  transferring: () => void;
  ended: (info: EndInfo) => void;
  remoteStream: (stream: MediaStream) => void;
  mute: (muted: boolean) => void;
  /** A gateway error about this call that no pending request took. */
  error: (error: PhoneError) => void;
}

declare class Emitter<Events> {
  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof Events>(event: E, listener: Events[E]): () => void;
  off<E extends keyof Events>(event: E, listener: Events[E]): void;
}

export declare class Call extends Emitter<CallEvents> {
  private constructor();
  /** The call's id on the socket (`c1`, … for outgoing; the gateway's `in-…` for incoming). */
  readonly id: string;
  readonly direction: CallDirection;
  /** Outgoing: what was dialled. */
  readonly to: string | null;
  /** Incoming: the caller's URI, e.g. `sip:+15551234@pbx.example.org`. */
  readonly from: string | null;
  /** Incoming: the caller's display name, when the caller sent one. */
  readonly displayName: string | null;
  /** The account the call belongs to. */
  readonly aor: string | null;
  readonly state: CallState;
  /** On hold by us. */
  readonly held: boolean;
  /** On hold by the far end. */
  readonly remoteHeld: boolean;
  readonly muted: boolean;
  /** The far end's audio, once the gateway's answer is applied. */
  readonly remoteStream: MediaStream | null;
  /** The microphone stream the call sends. */
  readonly localStream: MediaStream | null;
  /** The call's connection (for getStats()); closed when the call ends. */
  readonly peerConnection: RTCPeerConnection | null;
  /** The element playing the call (null with `autoplay: false`). */
  readonly audioElement: HTMLMediaElement | null;
  readonly startedAt: Date;
  readonly answeredAt: Date | null;
  readonly endedAt: Date | null;
  readonly endInfo: EndInfo | null;
  /** Resolves on `answered`; rejects (code = end reason) if the call ends first. */
  readonly answered: Promise<void>;
  /** Resolves exactly once, when the call ends for whatever reason. */
  readonly ended: Promise<EndInfo>;
  /** Incoming: microphone, offer, `answer`; resolves once the call is established. */
  answer(): Promise<void>;
  /** Incoming: declines with 486 (default) or 603; resolves like `ended`. */
  reject(status?: 486 | 603): Promise<EndInfo>;
  /** CANCEL before the answer, BYE after (declines a call still ringing here); resolves like `ended`. */
  hangup(): Promise<EndInfo>;
  /** Resolves when the gateway reports `held` by `local`. */
  hold(): Promise<void>;
  /** Resolves when the gateway reports `resumed` by `local`. */
  unhold(): Promise<void>;
  /** 1–32 of `0-9 * # A-D` (lower-case a-d accepted); throws `invalid_dtmf` otherwise. */
  sendDtmf(digits: string): void;
  /** Blind transfer; resolves on `transferring` (`ended` with `transferred` follows). */
  transfer(to: string): Promise<void>;
  /** Mutes (default) or unmutes the microphone for this call. */
  mute(on?: boolean): void;
}

export declare class Phone extends Emitter<PhoneEvents> {
  constructor(options: PhoneOptions);
  readonly state: PhoneState;
  /** The account, once the gateway named it (`registering`). */
  readonly aor: string | null;
  /** The registration's granted expiry in seconds (null for `authenticated`). */
  readonly expires: number | null;
  /** The calls in progress. */
  readonly calls: Call[];
  /** Microphone constraints for the next calls; may be replaced (e.g. another `deviceId`). */
  audioConstraints: MediaTrackConstraints;
  /** Resolves once registered; rejects with the gateway's code (or a local one) and goes `offline`. */
  connect(): Promise<void>;
  /** Hangs up, logs out, closes the socket, stops reconnecting. */
  disconnect(): Promise<void>;
  /** Places a call; resolves when the gateway answered the offer (before the far end answers). */
  call(to: string, options?: { aor?: string }): Promise<Call>;
  /** The gateway's round trip, in milliseconds. */
  ping(): Promise<number>;
  /** Audio output device for calls and tones; rejects with `sink_unsupported` where unsupported. */
  setSinkId(deviceId: string): Promise<void>;
  /** The audio devices (labels empty until microphone permission is granted). */
  devices(): Promise<{ inputs: MediaDeviceInfo[]; outputs: MediaDeviceInfo[] }>;
}
