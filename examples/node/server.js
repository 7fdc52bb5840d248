'use strict';
// Runs the token handler (handler.js) as an HTTP server.
//
//   SIPTOKEN_KEYS=keys.conf OPERATORS=operators.json PORT=8080 node server.js
//
// SIPTOKEN_KEYS: the key ring file (the gateway has the same keys); SIPTOKEN_APP: the
// application name (default CRM); OPERATORS: the operator directory (default
// operators.example.json); HOST/PORT: where to listen (default 127.0.0.1:8080; PORT=0 picks a
// free port). Prints "listening on http://HOST:PORT" once ready.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { KeyRing } = require('siptoken');
const { createHandler, directoryFrom } = require('./handler.js');

function fail(message) {
  console.error(`server: ${message}`);
  process.exit(2);
}

const keysFile = process.env.SIPTOKEN_KEYS || fail('set SIPTOKEN_KEYS to the key ring file');
let ring;
try {
  ring = KeyRing.parse(fs.readFileSync(keysFile, 'utf8'));
} catch (e) {
  fail(`${keysFile}: ${e.message}`); // SipTokenError messages never contain key material
}
const app = process.env.SIPTOKEN_APP || 'CRM';
if (!ring.apps().includes(app)) fail(`${keysFile} has no key for the application ${app}`);
const operators = JSON.parse(fs.readFileSync(process.env.OPERATORS || path.join(__dirname, 'operators.example.json'), 'utf8'));

const server = http.createServer(createHandler({ ring, app, directory: directoryFrom(operators) }));
server.listen(Number(process.env.PORT ?? 8080), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
