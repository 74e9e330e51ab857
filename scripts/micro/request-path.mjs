#!/usr/bin/env node
// What our own code costs per call along the whole request path, in one process, without the
// network: no sockets, no uWS, no process boundaries. A GET /hello with a few headers, answered by
// a Workers-style and a Lambda-style no-op, one stage at a time and then the whole chain:
//
//   1. gateway: route + pick       RouteTable.get (src/routes/route-table.ts) on the key server.ts
//                                  builds, then the least-loaded pick (src/scheduler/policies.ts)
//                                  over one worker, as Fleet.invoke calls it
//   2. gateway → worker frame      the invoke message as WorkerConnection.invoke sends it (version
//                                  known: no `spec`), encodeFrame + FrameDecoder.push (src/protocol/frames.ts)
//   3. worker → host frame         encodeInstanceFrame as Instance.invoke sends it
//                                  (src/protocol/instance-frames.ts), decoded as node-host.mjs does
//   4. host: the call              runFetch / runLambda (workers/runtime/node-calls.mjs): the
//                                  Request or event, the function, its answer read back
//   5. host → worker frame         encodeHostFrame (node-calls.mjs) + InstanceFrameDecoder.push
//   6. worker → gateway frame      the result message as invoke-server.ts sends it, encodeFrame +
//                                  FrameDecoder.push
//   7. whole chain                 1 → 6 for one call, each stage's output the next one's input
//
// Each stage's buffers reach the next decoder as the socket would hand them over: frames.ts'
// decoder gets the buffers encodeFrame returns, in turn (FrameWriter writes them so); the host
// and the worker read one chunk, so an instance frame's buffers are joined (Buffer.concat, the
// copy the socket read makes). Left out, beside the I/O: the bookkeeping around a call (promises,
// timers and pending maps in WorkerConnection, Instance and the pool; the host's
// AsyncLocalStorage.run) and the reply uWS writes in server.ts. tinybench, median per call;
// route + pick is timed 1,000 at a time (tens of ns, under the timer's resolution); stage 4 and
// the whole chain are async, so each of their samples holds one microtask turn. Absolute figures
// vary with the machine: compare rows, and this with the load test's CPU per request.
//
//   npm run build && node scripts/micro/request-path.mjs      (pinned: taskset -c 1 node …)
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { seeded } from '../lib/bench-helpers.mjs';
import { encodeHostFrame, HostFrameReader, runFetch, runLambda } from '../../workers/runtime/node-calls.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (file) => path.join(root, 'dist', file);
for (const file of ['src/protocol/frames.js', 'src/routes/route-store.js', 'src/scheduler/policies.js', 'src/protocol/instance-frames.js']) {
  if (!fs.existsSync(dist(file))) {
    console.error(`dist/${file} is missing: run npm run build first`);
    process.exit(1);
  }
}
const { encodeFrame, FrameDecoder } = await import(dist('src/protocol/frames.js'));
const { RouteTable } = await import(dist('src/routes/route-table.js'));
const { parseRouteKey } = await import(dist('src/routes/route-key.js'));
const { parseFunctionConfig } = await import(dist('src/routes/function-config.js'));
const { createPolicy } = await import(dist('src/scheduler/policies.js'));
const { encodeInstanceFrame, InstanceFrameDecoder } = await import(dist('src/protocol/instance-frames.js'));

// FrameType is a const enum: inlined by tsc, so not exported at run time (src/protocol/messages.ts).
const INVOKE = 1;
const RESULT = 2;

// The request, as server.ts has it once uWS has parsed it, with the headers the gateway adds
// before the call: the forwarding ones (forward(), src/http/forwarded.ts) and the call's
// traceparent (src/http/pipeline/invoke.ts).
const METHOD = 'GET';
const PATH = '/hello';
const QUERY = '';
const HEADERS = [
  'host', '127.0.0.1:8080', 'user-agent', 'wrk', 'accept', '*/*',
  'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http', 'x-forwarded-host', '127.0.0.1:8080', 'x-real-ip', '127.0.0.1',
  'forwarded', 'for=127.0.0.1;host="127.0.0.1:8080";proto=http',
  'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
];
const REQUEST_BODY = Buffer.alloc(0);

// The two functions, as node-host.mjs holds them once loaded: Workers style is the default
// export's fetch, called with the export as `this`; Lambda style is the handler alone.
const workersModule = { async fetch() { return new Response('hello from faas\n', { headers: { 'content-type': 'text/plain' } }); } };
const lambdaHandler = async () => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'hello from faas\n' });
const FUNCTION_ENV = Object.freeze({}); // node-host.mjs: the route's env, frozen
const MEMORY_MB = '128'; // node-host.mjs has it from its argv: a string

// The route table holding GET:/hello, its Route made as the store's sync makes it (as in route-lookup.mjs).
const KEY = `${METHOD}:${PATH}`;
const { method: routeMethod, path: routePath } = parseRouteKey(KEY);
const { config } = parseFunctionConfig(JSON.stringify({ runtime: 'node', code: 'export default { fetch() {} }' }));
const table = new RouteTable(new Map([[KEY, Object.freeze({ key: KEY, method: routeMethod, path: routePath, version: 1, updated: 1_700_000_000_000, config })]]));

// One worker, connected, idle, warm for the function, its last report 200 ms old (as in bench-pick.mjs).
// The clock is fixed, as Fleet's injectable `now` allows: a real Date.now() adds ~20 ns.
const NOW = 1_000_000;
const STALE_AFTER_MS = 2 * 500 + 100; // Fleet: 2 × report period (500 ms by default) + 100
const workers = [{
  id: 'w0', score: 10, inFlight: 0, lastReportMs: NOW - 200, connected: true,
  inFlightOf() { return 0; },
  isWarm(key) { return key === KEY; },
}];
const policy = createPolicy('least-loaded', STALE_AFTER_MS);
const random = seeded(1);

// One decoder per connection end, kept across calls, as on the real connections.
const workerDecoder = new FrameDecoder(); // the worker's, for frames from the gateway
const gatewayDecoder = new FrameDecoder(); // the gateway's, for frames from the worker
const instanceDecoder = new InstanceFrameDecoder(); // the worker's, for frames from a host
const hostReader = new HostFrameReader(); // the host's read side
let gatewayNextId = 1; // WorkerConnection's call ids
let instanceNextId = 1; // Instance's call ids

/** The one frame a decoder gives back for `bufs`, fed to it in turn; throws if it is not exactly one. */
function decodeOne(decoder, bufs) {
  let frames = [];
  for (const b of bufs) if (b.length > 0) frames = frames.concat(decoder.push(b)); // BatchWriter skips empty buffers
  if (frames.length !== 1) throw new Error(`decoded ${frames.length} frames, expected 1`);
  return frames[0];
}

/** 1. Gateway: the route for the request (server.ts), then the worker for the call (Fleet.invoke). */
function routeAndPick() {
  const route = table.get(`${METHOD}:${PATH}`);
  if (!route) throw new Error(`no route for ${KEY}`);
  const worker = policy.pick(workers, NOW, random, { key: route.key, maxConcurrency: route.config.maxConcurrency });
  if (!worker) throw new Error('no worker picked');
  return route;
}

/** 2. Gateway → worker: the invoke frame as the worker decodes it. The request id: server.ts makes one per request. */
function gatewayToWorker(route) {
  const message = {
    t: INVOKE, id: gatewayNextId++, key: route.key, version: route.version,
    requestId: randomUUID(), method: METHOD, path: PATH, query: QUERY, headers: HEADERS,
  };
  return decodeOne(workerDecoder, encodeFrame(message, REQUEST_BODY));
}

/**
 * 3. Worker → host: invoke-server.ts takes the call (its clock starts), Instance.invoke frames it;
 * the host decodes it (HostFrameReader, node-calls.mjs).
 */
function workerToHost({ message, body }) {
  const started = performance.now();
  const req = { requestId: message.requestId, method: message.method, path: message.path, query: message.query, headers: message.headers };
  const chunk = Buffer.concat(encodeInstanceFrame({ t: 'invoke', id: instanceNextId++, deadlineMs: Date.now() + config.timeoutMs, ...req }, body));
  const frames = hostReader.push(chunk);
  if (frames.length !== 1) throw new Error(`the host read ${frames.length} frames from one`);
  const { msg: call, body: callBody } = frames[0];
  return { gatewayId: message.id, started, call, body: callBody };
}

/** 4. Host: the call, as node-host.mjs' invoke() makes it for each style. */
const CALLS = {
  fetch: (call, body) => runFetch(workersModule.fetch, workersModule, call, body, FUNCTION_ENV),
  lambda: (call, body) => runLambda(lambdaHandler, call, body, KEY, MEMORY_MB),
};

/** 5. Host → worker: the result frame as Instance.onMessage gets it. */
function hostToWorker(id, out) {
  if (out.invalid) throw new Error(`the function's answer is invalid: ${out.invalid}`);
  const frames = instanceDecoder.push(Buffer.concat(encodeHostFrame({ t: 'result', id, status: out.status, headers: out.headers }, out.body)));
  if (frames.length !== 1) throw new Error(`decoded ${frames.length} instance frames, expected 1`);
  return frames[0];
}

/** 6. Worker → gateway: the result frame as invoke-server.ts sends it, as WorkerConnection decodes it. */
function workerToGateway(gatewayId, started, { meta, body }) {
  const message = { t: RESULT, id: gatewayId, fnMs: performance.now() - started, status: meta.status, headers: meta.headers, cold: false };
  return decodeOne(gatewayDecoder, encodeFrame(message, body));
}

/** 7. One call through every stage. */
async function chain(style) {
  const route = routeAndPick();
  const { gatewayId, started, call, body } = workerToHost(gatewayToWorker(route));
  const out = await CALLS[style](call, body);
  return workerToGateway(gatewayId, started, hostToWorker(call.id, out));
}

// Before timing: a whole call per style must come back as the function answered it.
const STYLES = [['fetch', 'Workers-style fetch'], ['lambda', 'Lambda-style handler']];
for (const [style, label] of STYLES) {
  const { message, body } = await chain(style);
  const contentType = message.headers[message.headers.indexOf('content-type') + 1];
  if (message.t !== RESULT || message.status !== 200 || body.toString() !== 'hello from faas\n' || contentType !== 'text/plain') {
    throw new Error(`${label}: the chain gave back ${JSON.stringify({ ...message, body: body.toString() })}, ` +
      "expected status 200, content-type text/plain and the body 'hello from faas\\n'");
  }
}

/** Route + pick is tens of ns, under the timer's resolution: each timed call of that stage does this many. */
const ROUTE_BATCH = 1000;
// Each stage is timed on fixed input: what the stage before it gave for one call. Stages 1–3
// do not depend on the function: timed once.
const route = routeAndPick();
const invokeFrame = gatewayToWorker(route);
const hostCall = workerToHost(invokeFrame);
const STAGES = [
  ['1. gateway: route + pick', 'route'],
  ['2. gateway → worker frame', 'to-worker'],
  ['3. worker → host frame', 'to-host'],
  ['4. host: the call', 'call'],
  ['5. host → worker frame', 'from-host'],
  ['6. worker → gateway frame', 'to-gateway'],
];
const bench = new Bench({ time: 500, warmupTime: 100, throws: true });
bench.add('route', () => {
  for (let i = 0; i < ROUTE_BATCH; i++) routeAndPick();
});
bench.add('to-worker', () => gatewayToWorker(route));
bench.add('to-host', () => workerToHost(invokeFrame));
for (const [style] of STYLES) {
  const out = await CALLS[style](hostCall.call, hostCall.body);
  const settled = hostToWorker(hostCall.call.id, out);
  bench.add(`${style}: call`, () => CALLS[style](hostCall.call, hostCall.body));
  bench.add(`${style}: from-host`, () => hostToWorker(hostCall.call.id, out));
  bench.add(`${style}: to-gateway`, () => workerToGateway(hostCall.gatewayId, hostCall.started, settled));
  bench.add(`${style}: chain`, () => chain(style));
}
await bench.run();

/** Median ms per call of a task: a stage shared by both styles has no style in its name. */
const medianMs = (style, name) => {
  const task = bench.tasks.find((t) => t.name === `${style}: ${name}`) ?? bench.tasks.find((t) => t.name === name);
  return (task.result.latency?.p50 ?? task.result.p50) / (name === 'route' ? ROUTE_BATCH : 1);
};
const cell = (ms) => `${(ms * 1000).toFixed(2)} µs | ${Math.round(1000 / ms).toLocaleString('en')}`;

const cpus = os.cpus();
const allowed = os.availableParallelism();
console.log(`request path in one process, ${new Date().toISOString().slice(0, 10)}, ${cpus[0]?.model ?? 'unknown CPU'}, ` +
  `${cpus.length} cores${allowed < cpus.length ? ` (this process allowed ${allowed})` : ''}, Node ${process.version}; ` +
  'command: node scripts/micro/request-path.mjs\n');
console.log(`| stage (GET ${PATH}, ${HEADERS.length / 2} headers) | ${STYLES.map(([, label]) => `${label}: median per call | calls/s`).join(' | ')} |`);
console.log(`|---|${STYLES.map(() => '---|---').join('|')}|`);
for (const [label, name] of STAGES) {
  console.log(`| ${label}${['route', 'to-worker', 'to-host'].includes(name) ? ' (same for both: timed once)' : ''} | ${STYLES.map(([style]) => cell(medianMs(style, name))).join(' | ')} |`);
}
const sums = STYLES.map(([style]) => STAGES.reduce((sum, [, name]) => sum + medianMs(style, name), 0));
console.log(`| sum of stages 1–6 | ${sums.map(cell).join(' | ')} |`);
console.log(`| 7. whole chain, 1 → 6 for one call | ${STYLES.map(([style]) => cell(medianMs(style, 'chain'))).join(' | ')} |`);
// Once in a dozen runs on a shared 2-core VM the chain's median came out ~200× its stages'
// sum, and not again: say so rather than print such a row as if it were the floor.
STYLES.forEach(([style, label], i) => {
  if (medianMs(style, 'chain') > 2 * sums[i]) console.log(`\nWarning: ${label}'s whole chain is over twice the sum of its stages: the machine was probably busy; run it again.`);
});
console.log('\nThis is the CPU floor of our own code per call, on one core and without I/O; compare it with the load test\'s CPU per request ' +
  '(`npm run bench -- load`, README "CPU µs per request by process"): the difference is syscalls, wake-ups and uWS ' +
  '(and the per-call bookkeeping left out here: promises, timers, pending maps, the host\'s AsyncLocalStorage).');
