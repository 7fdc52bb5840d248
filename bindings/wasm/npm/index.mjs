// ESM entry point of the npm package `siptoken`: the same single instance as the CommonJS entry
// (index.js), so `instanceof KeyRing` and `instanceof SipTokenError` agree between the two.
import siptoken from './index.js';

export const { KeyRing, SipTokenError, issue, verify, version } = siptoken;
export default siptoken;
