// Types of the ESM entry of the npm package `siptoken`: the same API as the CommonJS entry.
import * as siptoken from './index.js';
export * from './index.js';
export default siptoken;
