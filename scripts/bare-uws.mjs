// The baseline for scripts/bench-latency.mjs: bare uWebSockets.js answering what the gateway's
// demo routes answer — GET /hello (`hello from faas\n`, text/plain), POST /echo (the body back),
// GET /py/hello (the python demo's JSON) — on 127.0.0.1 and a free port.
// Prints `listening http=PORT` like the gateway once it is ready.
//
// The native binary is loaded the way src/http/uws.ts loads it; the package's pure-JS fallback
// would measure something else entirely, so a binary that does not load is a loud failure.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const name = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
let uws;
try {
  uws = require(`uWebSockets.js/binaries/${name}`);
} catch (err) {
  process.stderr.write(
    `bare-uws: the uWebSockets.js native binary ${name} did not load: ${String(err?.message ?? err).split('\n')[0]}\n` +
      `  (Node ${process.version}, ABI ${process.versions.modules}, ${process.platform}/${process.arch}; the package ships Node 20 binaries: run Node 20 and npm install)\n`,
  );
  process.exit(1);
}
if (typeof uws.App !== 'function' || typeof uws.us_socket_local_port !== 'function') {
  process.stderr.write(`bare-uws: ${name} loaded but does not export App/us_socket_local_port; not a uWS binary\n`);
  process.exit(1);
}

const body = 'hello from faas\n';
const pythonBody = '{"hello": "from python", "path": "/py/hello"}';
uws
  .App()
  .get('/hello', (res) => {
    res.writeHeader('content-type', 'text/plain;charset=UTF-8').end(body);
  })
  .get('/py/hello', (res) => {
    res.writeHeader('content-type', 'application/json').end(pythonBody);
  })
  .post('/echo', (res, req) => {
    // The demo POST /echo answers the body it got with its content type: so does this.
    const type = req.getHeader('content-type') || 'application/octet-stream';
    const chunks = [];
    res.onAborted(() => { res.aborted = true; });
    res.onData((chunk, last) => {
      chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory after the callback
      if (last && !res.aborted) res.cork(() => res.writeHeader('content-type', type).end(Buffer.concat(chunks)));
    });
  })
  .any('/*', (res) => {
    res.writeStatus('404 Not Found').end('not found\n');
  })
  .listen('127.0.0.1', 0, (socket) => {
    if (!socket) {
      process.stderr.write('bare-uws: could not listen on 127.0.0.1 (port 0)\n');
      process.exit(1);
    }
    process.stdout.write(`listening http=${uws.us_socket_local_port(socket)}\n`);
  });
