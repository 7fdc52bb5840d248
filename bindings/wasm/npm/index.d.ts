// Types of the npm package `siptoken` (CommonJS entry; index.d.mts is the ESM one).

/** The stable error codes of the siptoken core (never change meaning; new ones may be added). */
export type ErrorCode =
  | 'malformed'
  | 'unknown_app'
  | 'unknown_key'
  | 'bad_signature'
  | 'legacy_disabled'
  | 'invalid_xml'
  | 'missing_field'
  | 'invalid_field'
  | 'expired'
  | 'not_yet_valid'
  | 'lifetime_too_long'
  | 'too_large'
  | 'invalid_keyring'
  | 'invalid_json'
  | 'io';

/** Thrown when the core refuses a key ring, claims or options. `message` never holds secrets. */
export class SipTokenError extends Error {
  constructor(message: string, code: ErrorCode);
  readonly name: 'SipTokenError';
  /** The stable machine-readable code. */
  readonly code: ErrorCode;
}

/**
 * Per-application keys in the Web Call Server syntax (`APP=HEX` legacy, `APP.KID=HEX` v1,
 * `#` comments). The key material lives in WebAssembly memory and is zeroized when freed.
 */
export class KeyRing {
  private constructor();
  /** Parses key ring text; throws SipTokenError `invalid_keyring` (naming the line, not the key). */
  static parse(text: string): KeyRing;
  /** The application names that have at least one key, sorted. */
  apps(): string[];
  /** Frees the keys now (zeroized) instead of at garbage collection. The ring is unusable after. */
  free(): void;
}

/** A claim value: strings, whole numbers and booleans become XML attribute text. */
export type ClaimValue = string | number | boolean;

/** The claims of a token, keyed by their XML attribute names. */
export interface Claims {
  /** SIP user. */
  login: string;
  /** SIP password. */
  password: string;
  /** SIP domain. */
  domain: string;
  /** Authentication name; defaults to `login`. */
  authenticationName?: string;
  /** Outbound proxy host. */
  outboundProxy?: string;
  /** 1–65535. */
  port?: number | string;
  /** Display name. */
  visibleName?: string;
  transport?: 'udp' | 'tcp' | 'tls';
  /** Whether the gateway should REGISTER (default true). */
  registered?: boolean | 'true' | 'false';
  /** Unix seconds (UTC). Default: now + `ttl_seconds`. */
  expires?: number | string;
  /** Unix seconds; set to now for v1 tokens when absent. */
  issued?: number | string;
  /** 32 lowercase hex characters; random for v1 tokens when absent. */
  id?: string;
  /** Time-to-live in seconds when `expires` is absent (default 300). Not an XML attribute. */
  ttl_seconds?: number;
  /** Other attributes are carried as they are (forward compatibility). */
  [attribute: string]: ClaimValue | undefined;
}

export interface IssueOptions {
  /** Issue a legacy (Web Call Server, unauthenticated) token instead of v1. Default false. */
  legacy?: boolean;
  /** Sign a v1 token with this key id instead of the application's newest key. */
  kid?: string;
  /** Pin the clock to these Unix seconds. Default: the current time. */
  now?: number;
}

export interface VerifyOptions {
  /** Accept legacy (unauthenticated) tokens. Default false. */
  allow_legacy?: boolean;
  /** Clock leeway for `expires` and `issued`, seconds. Default 30. */
  leeway_seconds?: number;
  /** Largest accepted `expires - issued`, seconds. Default 86400. */
  max_lifetime_seconds?: number;
  /** Refuse legacy tokens without `expires`. Default true. */
  require_legacy_expiry?: boolean;
  /** Pin the clock to these Unix seconds. Default: the current time. */
  now?: number;
}

/** Every XML attribute of a verified token, unknown ones included, as decoded strings. */
export interface VerifiedClaims {
  login: string;
  password: string;
  domain: string;
  expires: string;
  [attribute: string]: string;
}

export interface VerifyValid {
  valid: true;
  format: 'v1' | 'legacy';
  app: string;
  /** The key id (v1), or null (legacy). */
  kid: string | null;
  claims: VerifiedClaims;
}

export interface VerifyInvalid {
  valid: false;
  error: ErrorCode;
  message: string;
}

/** Exactly the object `siptoken verify --json --show-password` prints. */
export type VerifyResult = VerifyValid | VerifyInvalid;

/**
 * Issues a token for `app`. Throws SipTokenError (`unknown_app`, `unknown_key`,
 * `missing_field`, `invalid_field`, `invalid_json`, `too_large`) or TypeError on misuse.
 */
export function issue(ring: KeyRing, app: string, claims: Claims, options?: IssueOptions): string;

/**
 * Verifies a token. A rejected token is a result with `valid: false`, not an exception; throws
 * only TypeError on misuse and SipTokenError `invalid_json` on bad options.
 */
export function verify(ring: KeyRing, token: string, options?: VerifyOptions): VerifyResult;

/** The version of the siptoken core library inside this package. */
export const version: string;
