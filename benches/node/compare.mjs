// Issue and verify per call from Node: the siptoken npm package (the core compiled to WebAssembly)
// next to Node's own `crypto` doing the same v1 work (AES-128-CTR + HMAC-SHA256 + hex + a simple
// XML build/parse), for a realistic token (~300 bytes of XML). Prints medians and ratios.
//
//   bindings/wasm/build.sh && node benches/node/compare.mjs [--rounds 15] [--iterations 20000]
//
// The Node implementation is checked against the package first (tokens cross both ways), so
// both sides do the same, complete work: the comparison is the cost of going through WASM
// (no AES-NI/SHA-NI inside WebAssembly, JSON across the boundary) against OpenSSL via node:crypto.
import crypto from 'node:crypto';
import assert from 'node:assert/strict';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '../../bindings/wasm/pkg/index.mjs');
const { KeyRing, issue, verify, version } = await import(pkg).catch((e) => {
  console.error(`cannot load ${pkg} (run bindings/wasm/build.sh first): ${e.message}`);
  process.exit(2);
});

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('--rounds', 15);
const ITERATIONS = arg('--iterations', 20000);

const KEY_HEX = '6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2';
const ring = KeyRing.parse(`CRM.k1=${KEY_HEX}\n`);
const NOW = Math.floor(Date.now() / 1000);
const CLAIMS = {
  login: 'operator.1042',
  authenticationName: 'operator.1042',
  password: 'Zx9#kq2!mP7&wR4<tY',
  domain: 'sip.example-telecom.org',
  outboundProxy: 'edge1.sip.example-telecom.org',
  port: 5061,
  visibleName: 'Operator 1042 (Support, 2nd line)',
  transport: 'tls',
  registered: true,
  ttl_seconds: 300,
};

// --- v1 with node:crypto ----------------------------------------------------------------------
const KEYS = new Map([['CRM', new Map([['k1', { sign: Buffer.from(KEY_HEX, 'hex').subarray(0, 16), enc: Buffer.from(KEY_HEX, 'hex').subarray(16) }]])]]);
const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };
const escape = (v) => String(v).replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c]);
const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescape = (v) =>
  v.replace(/&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));/g, (_, name, dec, hex) =>
    name ? ENTITIES[name] : String.fromCodePoint(dec ? Number(dec) : parseInt(hex, 16)),
  );
const ATTRIBUTE_ORDER = ['login', 'authenticationName', 'password', 'domain', 'outboundProxy', 'port', 'visibleName', 'transport', 'registered'];

function nodeIssue(app, claims) {
  const [kid, key] = [...KEYS.get(app)].at(-1);
  const issued = Math.floor(Date.now() / 1000);
  const expires = issued + (claims.ttl_seconds ?? 300);
  const random = crypto.randomBytes(32); // nonce and id
  let xml = '<root';
  for (const name of ATTRIBUTE_ORDER) if (claims[name] !== undefined) xml += ` ${name}="${escape(claims[name])}"`;
  xml += ` expires="${expires}" issued="${issued}" id="${random.toString('hex', 16)}"/>`;
  const nonce = random.subarray(0, 16);
  const cipher = crypto.createCipheriv('aes-128-ctr', key.enc, nonce);
  const ciphertext = Buffer.concat([cipher.update(xml, 'utf8'), cipher.final()]);
  const prefix = `${app}:v1.${kid}.`;
  const tag = crypto.createHmac('sha256', key.sign).update(prefix).update(nonce).update(ciphertext).digest();
  return prefix + Buffer.concat([nonce, ciphertext, tag]).toString('hex');
}

const fail = (error) => ({ valid: false, error });
function nodeVerify(token, now = Math.floor(Date.now() / 1000), leeway = 30) {
  if (token.length > 8192) return fail('too_large');
  const colon = token.indexOf(':');
  if (colon < 1 || !token.startsWith('v1.', colon + 1)) return fail('malformed');
  const dot = token.indexOf('.', colon + 4);
  if (dot < 0) return fail('malformed');
  const app = token.slice(0, colon);
  const kid = token.slice(colon + 4, dot);
  const hex = token.slice(dot + 1);
  if (hex.length % 2 || hex.length < 98 || !/^[0-9a-f]+$/.test(hex)) return fail('malformed');
  const keys = KEYS.get(app);
  if (!keys) return fail('unknown_app');
  const key = keys.get(kid);
  if (!key) return fail('unknown_key');
  const body = Buffer.from(hex, 'hex');
  const nonce = body.subarray(0, 16);
  const ciphertext = body.subarray(16, body.length - 32);
  const tag = crypto.createHmac('sha256', key.sign).update(token.slice(0, dot + 1)).update(nonce).update(ciphertext).digest();
  if (!crypto.timingSafeEqual(tag, body.subarray(body.length - 32))) return fail('bad_signature');
  const decipher = crypto.createDecipheriv('aes-128-ctr', key.enc, nonce);
  const xml = Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  const m = /^<root((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*\/>$/.exec(xml);
  if (!m) return fail('invalid_xml');
  const claims = {};
  for (const [, name, value] of m[1].matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
    if (name in claims) return fail('invalid_xml');
    claims[name] = unescape(value);
  }
  for (const name of ['login', 'password', 'domain', 'expires', 'issued', 'id']) if (!(name in claims)) return fail('missing_field');
  const expires = Number(claims.expires);
  const issued = Number(claims.issued);
  if (now > expires + leeway) return fail('expired');
  if (issued > now + leeway) return fail('not_yet_valid');
  if (expires - issued > 86400) return fail('lifetime_too_long');
  return { valid: true, format: 'v1', app, kid, claims };
}

// --- the two do the same work -----------------------------------------------------------------
{
  const fromNode = nodeIssue('CRM', CLAIMS);
  const fromWasm = issue(ring, 'CRM', CLAIMS);
  const a = verify(ring, fromNode);
  const b = nodeVerify(fromWasm);
  assert.equal(a.valid, true, a.message);
  assert.equal(b.valid, true, b.error);
  assert.deepEqual(Object.keys(a.claims).sort(), Object.keys(b.claims).sort());
  assert.equal(b.claims.password, CLAIMS.password);
  assert.equal(a.claims.visibleName, CLAIMS.visibleName);
  assert.equal(fromNode.length, fromWasm.length, 'same token size');
  assert.equal(nodeVerify(fromWasm.slice(0, -1) + (fromWasm.endsWith('0') ? '1' : '0')).error, 'bad_signature');
}

// --- timing -------------------------------------------------------------------------------------
// Rounds of the four cases are interleaved, so that other load on the machine falls on all of
// them alike; the median round is reported.
const wasmToken = issue(ring, 'CRM', CLAIMS);
const nodeToken = nodeIssue('CRM', CLAIMS);
let sink = 0;
const cases = {
  issue: {
    wasm: () => (sink += issue(ring, 'CRM', CLAIMS).length),
    node: () => (sink += nodeIssue('CRM', CLAIMS).length),
  },
  verify: {
    wasm: () => (sink += verify(ring, wasmToken).valid ? 1 : 0),
    node: () => (sink += nodeVerify(nodeToken).valid ? 1 : 0),
  },
};
const samples = {};
for (const [op, impls] of Object.entries(cases)) {
  for (const [impl, fn] of Object.entries(impls)) {
    for (let i = 0; i < Math.min(ITERATIONS, 5000); i++) fn(); // warm-up
    samples[`${op}/${impl}`] = [];
  }
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [op, impls] of Object.entries(cases)) {
    for (const [impl, fn] of Object.entries(impls)) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ITERATIONS; i++) fn();
      samples[`${op}/${impl}`].push(Number(process.hrtime.bigint() - t0) / ITERATIONS);
    }
  }
}
assert.ok(sink > 0);
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const results = Object.fromEntries(
  Object.keys(cases).map((op) => [op, { wasm: median(samples[`${op}/wasm`]), node: median(samples[`${op}/node`]) }]),
);

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`siptoken ${version} WASM vs node:crypto, v1, ${wasmToken.length}-char token; Node ${process.version}, ${cpu}`);
console.log(`median of ${ROUNDS} interleaved rounds x ${ITERATIONS} calls; load average ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`);
console.log('op      WASM (µs/call)  node:crypto (µs/call)  WASM calls/s  node calls/s  WASM/node');
for (const [op, { wasm, node }] of Object.entries(results)) {
  console.log(
    `${op.padEnd(7)} ${(wasm / 1000).toFixed(2).padStart(14)}  ${(node / 1000).toFixed(2).padStart(21)}  ${Math.round(1e9 / wasm)
      .toString()
      .padStart(12)}  ${Math.round(1e9 / node).toString().padStart(12)}  ${(wasm / node).toFixed(2).padStart(8)}x`,
  );
}
