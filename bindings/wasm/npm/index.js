'use strict';
// The public API of the npm package `siptoken` (CommonJS; index.mjs re-exports it for ESM).
//
// All the work (key rings, claims, XML, AES-128-CTR, HMAC-SHA256, the JSON shapes) is done by
// the siptoken core library compiled to WebAssembly (siptoken_wasm.js and its .wasm, generated
// by wasm-bindgen). This file only checks argument types, turns objects into the JSON the core
// reads, and defines SipTokenError.

const raw = require('./siptoken_wasm.js');

/**
 * An error of the siptoken core, with its stable machine-readable code (`malformed`,
 * `unknown_app`, `invalid_keyring`, `missing_field`, …). Messages never contain keys,
 * passwords or whole tokens.
 */
class SipTokenError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'SipTokenError';
    this.code = code;
  }
}
raw.__setErrorClass(SipTokenError);

const { KeyRing } = raw;
// free() twice is harmless (the generated one would throw on the second call).
const rawFree = KeyRing.prototype.free;
KeyRing.prototype.free = function free() {
  if (this.__wbg_ptr) rawFree.call(this);
};
const MAX_TOKEN_LEN = raw.maxTokenLen();

function checkRing(ring, fn) {
  if (!(ring instanceof KeyRing)) {
    throw new TypeError(`${fn}: the key ring must be a KeyRing (from KeyRing.parse)`);
  }
  if (!ring.__wbg_ptr) {
    throw new TypeError(`${fn}: this KeyRing has been freed`); // free() sets the pointer to 0
  }
}

function optionsJson(options, fn) {
  if (options === undefined || options === null) return '{}';
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${fn}: options must be an object`);
  }
  return JSON.stringify(options);
}

/**
 * Issues a token for `app` carrying `claims` (keyed by the XML attribute names; `expires`, or
 * `ttl_seconds`, default 300). Options: `legacy` (Web Call Server format instead of v1), `kid`
 * (v1 key id instead of the newest), `now` (pin the clock, Unix seconds).
 * Throws SipTokenError (`.code`) when the core refuses, TypeError on misuse.
 */
function issue(ring, app, claims, options) {
  checkRing(ring, 'issue');
  if (typeof app !== 'string') throw new TypeError('issue: the application name must be a string');
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new TypeError('issue: claims must be an object keyed by XML attribute names');
  }
  return raw.issueToken(ring, app, JSON.stringify(claims), optionsJson(options, 'issue'));
}

/**
 * Verifies `token`. Returns the object `siptoken verify --json --show-password` prints:
 * `{ valid: true, format, app, kid, claims }` or `{ valid: false, error, message }`; a rejected
 * token does not throw. Options (all optional): `allow_legacy` (false), `leeway_seconds` (30),
 * `max_lifetime_seconds` (86400), `require_legacy_expiry` (true), `now` (Unix seconds; default:
 * the current time). Throws TypeError on misuse and SipTokenError `invalid_json` on bad options.
 */
function verify(ring, token, options) {
  checkRing(ring, 'verify');
  if (typeof token !== 'string') throw new TypeError('verify: the token must be a string');
  const opts = optionsJson(options, 'verify');
  if (token.length > MAX_TOKEN_LEN) {
    // Over the limit whatever its encoding (UTF-8 has at least one byte per UTF-16 unit): the
    // core's too_large report, without copying a possibly huge string into WebAssembly memory.
    return JSON.parse(raw.oversizeReport(opts, Buffer.byteLength(token, 'utf8')));
  }
  return JSON.parse(raw.verifyToken(ring, token, opts));
}

/** The version of the siptoken core library inside this package. */
const version = raw.coreVersion();

module.exports = { KeyRing, SipTokenError, issue, verify, version };
