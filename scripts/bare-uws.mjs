// The baseline: bare uWebSockets.js answering what the gateway's demo GET /hello answers.
// Prints `listening http=PORT` like the gateway. Used by scripts/bench-latency.mjs.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
const uws = require(binary); // throws, loudly, if the native binary does not load
const body = 'hello from faas\n';
uws.App()
  .get('/hello', (res) => {
    res.writeHeader('content-type', 'text/plain;charset=UTF-8').end(body);
  })
  .listen('127.0.0.1', 0, (socket) => {
    if (!socket) throw new Error('bare uWS could not listen');
    process.stdout.write(`listening http=${uws.us_socket_local_port(socket)}\n`);
  });
