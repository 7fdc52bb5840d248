// Compiled (not run) by scripts/ci/30-wasm.sh with `tsc --strict --module node16` against the
// installed package: the CommonJS typings. Lines marked @ts-expect-error must stay errors.
import fs = require('node:fs');
import { KeyRing, SipTokenError, issue, verify, version, type VerifyResult, type ErrorCode } from 'siptoken';

const ring: KeyRing = KeyRing.parse(fs.readFileSync('keys.conf', 'utf8'));
const apps: string[] = ring.apps();
const token: string = issue(ring, 'CRM', { login: 'crm1', password: 'pw', domain: 'sip.example.org', port: 5060, ttl_seconds: 300 }, { legacy: false });
const result: VerifyResult = verify(ring, token, { allow_legacy: true, leeway_seconds: 30, max_lifetime_seconds: 86400, now: 1764120000 });
if (result.valid) {
  const login: string = result.claims.login;
  const kid: string | null = result.kid;
  const format: 'v1' | 'legacy' = result.format;
  console.log(login, kid, format, apps);
} else {
  const code: ErrorCode = result.error;
  console.log(code, result.message);
}
try {
  KeyRing.parse('x');
} catch (e) {
  if (e instanceof SipTokenError) console.log(e.code satisfies ErrorCode);
}
console.log(version.length);
// @ts-expect-error: the password is required
issue(ring, 'CRM', { login: 'crm1', domain: 'sip.example.org' });
// @ts-expect-error: not an option
verify(ring, token, { alow_legacy: true });
// @ts-expect-error: a KeyRing, not its text
verify('CRM=00', token);
ring.free();
