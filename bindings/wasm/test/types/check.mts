// Compiled (not run) by scripts/ci/30-wasm.sh with `tsc --strict --module node16` against the
// installed package: the ESM typings, named and default imports.
import siptoken, { KeyRing, SipTokenError, issue, verify, type VerifyResult } from 'siptoken';

const ring = KeyRing.parse('CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2');
const token: string = issue(ring, 'CRM', { login: 'crm1', password: 'pw', domain: 'sip.example.org', registered: false });
const result: VerifyResult = siptoken.verify(ring, token);
const same: typeof verify = siptoken.verify;
const err: SipTokenError = new SipTokenError('message', 'malformed');
console.log(result.valid, same, err.code, siptoken.version);
// @ts-expect-error: not an error code
new SipTokenError('message', 'no_such_code');
