'use strict';
// A plain node:http request handler for a CRM backend: an operator logs in to the CRM, and the
// CRM's web page asks for a SIP token for the operator's SIP account, which it hands to the
// WebRTC–SIP gateway. The SIP password stays on the server: the browser sees only the token.
//
//   POST /login      {"username": …, "password": …}  → 204 + session cookie (401 on bad login)
//   POST /sip-token  (with the session cookie)        → 200 {"token": …, "expires": <Unix s>}
//   POST /logout                                      → 204
//
// No framework: node:http, node:crypto and the `siptoken` package only.

const crypto = require('node:crypto');
const { issue, SipTokenError } = require('siptoken');

const MAX_BODY = 4096;

/** Hashes a CRM login password for the operator directory: "scrypt:<salt hex>:<hash hex>". */
function hashPassword(password, salt = crypto.randomBytes(16)) {
  return `scrypt:${salt.toString('hex')}:${crypto.scryptSync(password, salt, 32).toString('hex')}`;
}

function checkPassword(password, stored) {
  const [scheme, salt, hash] = String(stored).split(':');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'hex');
  const actual = crypto.scryptSync(password, Buffer.from(salt, 'hex'), expected.length);
  return crypto.timingSafeEqual(actual, expected);
}

/**
 * An operator directory over a list of
 * `{ username, passwordHash, sip: { login, password, domain, … any claim } }` records
 * (in a real CRM: its user table and wherever it keeps the SIP accounts).
 */
function directoryFrom(records) {
  const byName = new Map(records.map((r) => [r.username, r]));
  // Compare against a dummy hash for unknown users too, so that timing does not tell them apart.
  const dummy = hashPassword('no such user');
  return {
    authenticate(username, password) {
      const record = byName.get(username);
      const ok = checkPassword(password, record ? record.passwordHash : dummy);
      return ok && record ? username : null;
    },
    sipAccount(username) {
      const record = byName.get(username);
      return record ? record.sip : null;
    },
  };
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'cache-control': 'no-store',
    ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    ...headers,
  });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        // Answer now and stop reading; the connection is closed after the answer.
        req.removeAllListeners('data');
        req.resume();
        reject(Object.assign(new Error('request body too large'), { status: 413, close: true }));
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(Object.assign(new Error('request body is not JSON'), { status: 400 }));
      }
    });
    req.on('error', reject);
  });
}

function sessionId(req) {
  const cookie = req.headers.cookie || '';
  const m = /(?:^|;\s*)sid=([0-9a-f]{64})(?:;|$)/.exec(cookie);
  return m ? m[1] : null;
}

/**
 * The request handler.
 *
 * - `ring`: a siptoken KeyRing (parse it once at start-up);
 * - `app`: the application name the gateway knows the key by (e.g. "CRM");
 * - `directory`: `{ authenticate(username, password) → username | null, sipAccount(username) → claims | null }`;
 * - `ttlSeconds`: token lifetime (default 300: the page fetches a fresh token for each connect);
 * - `legacy`: issue Web Call Server legacy tokens (only for gateways that cannot take v1);
 * - `log`: where to log (never tokens or passwords).
 */
function createHandler({ ring, app, directory, ttlSeconds = 300, sessionSeconds = 8 * 3600, legacy = false, log = console }) {
  const sessions = new Map(); // session id → { username, expiresAt (ms) }

  function currentUser(req) {
    const sid = sessionId(req);
    const session = sid && sessions.get(sid);
    if (!session) return null;
    if (session.expiresAt < Date.now()) {
      sessions.delete(sid);
      return null;
    }
    return session.username;
  }

  async function login(req, res) {
    const body = await readJson(req);
    if (!body || typeof body.username !== 'string' || typeof body.password !== 'string') {
      return send(res, 400, { error: 'username and password are required' });
    }
    const username = directory.authenticate(body.username, body.password);
    if (!username) {
      log.info(`login refused for ${JSON.stringify(body.username)}`);
      return send(res, 401, { error: 'bad username or password' });
    }
    const sid = crypto.randomBytes(32).toString('hex');
    sessions.set(sid, { username, expiresAt: Date.now() + sessionSeconds * 1000 });
    log.info(`operator ${username} logged in`);
    return send(res, 204, undefined, {
      'set-cookie': `sid=${sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${sessionSeconds}`,
    });
  }

  function sipToken(req, res) {
    const username = currentUser(req);
    if (!username) return send(res, 401, { error: 'log in first' });
    const account = directory.sipAccount(username);
    if (!account) return send(res, 404, { error: 'no SIP account for this operator' });
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
    let token;
    try {
      token = issue(ring, app, { ...account, expires }, { legacy });
    } catch (e) {
      if (!(e instanceof SipTokenError)) throw e;
      // A configuration problem (no key for the app, a bad SIP account record): the code and
      // message name the field, never the password.
      log.error(`cannot issue a SIP token for operator ${username}: ${e.code}: ${e.message}`);
      return send(res, 500, { error: 'SIP token unavailable' });
    }
    log.info(`issued a SIP token for operator ${username} (SIP login ${account.login}, expires ${expires})`);
    return send(res, 200, { token, expires });
  }

  function logout(req, res) {
    const sid = sessionId(req);
    if (sid) sessions.delete(sid);
    return send(res, 204, undefined, { 'set-cookie': 'sid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0' });
  }

  const routes = { '/login': login, '/sip-token': sipToken, '/logout': logout };

  return async function handler(req, res) {
    try {
      const { pathname } = new URL(req.url, 'http://localhost');
      const route = routes[pathname];
      if (!route) return send(res, 404, { error: 'not found' });
      if (req.method !== 'POST') return send(res, 405, { error: 'use POST' }, { allow: 'POST' });
      return await route(req, res);
    } catch (e) {
      if (e.status) return send(res, e.status, { error: e.message }, e.close ? { connection: 'close' } : {});
      log.error(`internal error: ${e.message}`);
      return send(res, 500, { error: 'internal error' });
    }
  };
}

module.exports = { createHandler, directoryFrom, hashPassword };
