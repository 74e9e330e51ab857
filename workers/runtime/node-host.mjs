// Runs inside the sandbox: loads one node function and serves invocations over fd 3, or in a
// container over the bind-mounted Unix socket FAAS_CHANNEL names (frames:
// src/protocol/instance-frames.ts). Calls run concurrently, as in Workers isolates.
// Usage: node node-host.mjs ENTRY_FILE HANDLER FUNCTION_NAME MEMORY_MB ENV_JSON
//    or: node node-host.mjs          (pre-started: the first frame is a `load` with the code)
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { AsyncLocalStorage } from 'node:async_hooks';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { encodeHostFrame, HostFrameReader, lambdaStreamInput, runFetch, runLambda } from './node-calls.mjs';
import { installAwsLambda, isStreamified, runLambdaStream } from './lambda-stream.mjs';

let [entry, handlerName = '', functionName = '', memoryMb = '128', envJson = '{}'] = process.argv.slice(2);
// Workers' `env`: the route's own variables (they are in process.env too, beside PATH and HOME).
let functionEnv = Object.freeze(JSON.parse(envJson));
const LOG_CAP_BYTES = 8 * 1024;

const channel = process.env.FAAS_CHANNEL; // the worker's, not the function's
delete process.env.FAAS_CHANNEL;
const conn = channel ? net.connect(channel) : new net.Socket({ fd: 3, readable: true, writable: true });
conn.on('error', () => process.exit(1));
conn.on('close', () => process.exit(0));
// The worker stops an instance with SIGTERM, then SIGKILL after a grace period. In a container
// this host is pid 1, which the kernel spares signals it has no handler for: hence one here.
process.on('SIGTERM', () => process.exit(0));

// Frames queued during one event-loop turn go out in one write (as the worker's FrameWriter
// does): under load many calls finish per turn, and a write per frame was most of this host's
// system time.
let queued = [];
function send(meta, body) {
  if (queued.length === 0) setImmediate(flush);
  queued.push(...encodeHostFrame(meta, body));
}
function flush() {
  const out = queued;
  queued = [];
  conn.cork();
  for (const buf of out) conn.write(buf);
  conn.uncork();
}

// What the function prints goes to the worker's log tagged with the call, capped per call.
const current = new AsyncLocalStorage();
const logged = new Map(); // call id -> bytes logged
function capture(stream, text) {
  const id = current.getStore() ?? 0;
  const used = logged.get(id) ?? 0;
  if (used >= LOG_CAP_BYTES) return;
  let out = text;
  if (used + Buffer.byteLength(out) > LOG_CAP_BYTES) {
    out = Buffer.from(out).subarray(0, LOG_CAP_BYTES - used).toString() + `\n[output truncated at ${LOG_CAP_BYTES} bytes]`;
  }
  logged.set(id, used + Buffer.byteLength(text));
  send({ t: 'log', id, stream, text: out });
}
for (const [method, stream] of [['log', 'stdout'], ['info', 'stdout'], ['debug', 'stdout'], ['warn', 'stderr'], ['error', 'stderr'], ['trace', 'stderr']]) {
  console[method] = (...args) => capture(stream, format(...args));
}
process.stdout.write = (chunk) => (capture('stdout', String(chunk)), true);
process.stderr.write = (chunk) => (capture('stderr', String(chunk)), true);

function errorMessage(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : `thrown: ${format(err)}`;
}

// Code written for Lambda's Node runtime may use its `awslambda` global at import.
installAwsLambda();

async function load() {
  if (entry.endsWith('.wasm')) {
    // A WebAssembly module (runtime "wasm" in a sandboxed process): run per call CGI style, by
    // the same code and under the same limits as in a worker thread (wasm-task.js, wasm-limits.js).
    const { default: run } = await import('/faas/wasm-task.js');
    const { withMemoryLimit } = await import('/faas/wasm-limits.js');
    const module = await WebAssembly.compile(withMemoryLimit(fs.readFileSync(entry), Number(memoryMb) * 1024 * 1024));
    return { style: 'wasm', module, run };
  }
  const mod = await import(pathToFileURL(entry).href);
  const cands = [mod, mod.default].filter((m) => m && (typeof m === 'object' || typeof m === 'function'));
  const find = (name) => cands.map((m) => m[name]).find((f) => typeof f === 'function');
  // A handler named `fetch` (or none, with a default export that has fetch) is Workers style;
  // any other name is Lambda style.
  if (handlerName) {
    const fn = find(handlerName);
    if (!fn) throw new Error(`${entry} exports no function named "${handlerName}"`);
    return handlerName === 'fetch' ? { style: 'fetch', fn, self: mod.default } : lambdaStyle(fn);
  }
  if (typeof mod.default?.fetch === 'function') return { style: 'fetch', fn: mod.default.fetch, self: mod.default };
  const handler = find('handler');
  if (handler) return lambdaStyle(handler);
  if (typeof mod.fetch === 'function') return { style: 'fetch', fn: mod.fetch };
  throw new Error(`${entry} exports neither a default object with fetch(request, env, ctx) nor handler(event, context)`);
}

/** A Lambda handler, or one wrapped in awslambda.streamifyResponse (lambda-stream.mjs). */
function lambdaStyle(handler) {
  return { style: isStreamified(handler) ? 'lambda-stream' : 'lambda', fn: handler };
}

let fn;

/** Loads the function named by the arguments, or by a pre-started sandbox's `load` frame. */
async function start() {
  try {
    fn = await load();
    send({ t: 'ready' });
  } catch (err) {
    send({ t: 'load_error', message: errorMessage(err) });
    setTimeout(() => process.exit(1), 50);
  }
}

/** A pre-started sandbox becomes one function's: its files in the private /tmp, its env alone. */
function adopt(msg, body) {
  let at = 0;
  for (const file of msg.files) {
    const dest = path.resolve('/tmp/.fn', file.path);
    if (!dest.startsWith('/tmp/.fn/')) throw new Error(`load frame: a file outside the code folder: ${file.path}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, body.subarray(at, at + file.bytes));
    at += file.bytes;
  }
  entry = path.resolve('/tmp/.fn', msg.entry);
  handlerName = msg.handler;
  functionName = msg.key;
  memoryMb = String(msg.memoryMb);
  functionEnv = Object.freeze({ ...msg.env });
  Object.assign(process.env, msg.env);
  void start();
}

const reader = new HostFrameReader();
conn.on('data', (chunk) => {
  for (const { msg, body } of reader.push(chunk)) {
    switch (msg.t) {
      case 'invoke': if (fn) current.run(msg.id, () => invoke(msg, body)); break;
      case 'ack': answers.get(msg.id)?.ack(msg.bytes); break;
      case 'cancel': answers.get(msg.id)?.cancel(); break;
      case 'chunk': bodies.get(msg.id)?.enqueue(new Uint8Array(body.buffer, body.byteOffset, body.length)); break;
      case 'end': {
        const controller = bodies.get(msg.id);
        bodies.delete(msg.id);
        if (msg.error) controller?.error(new Error(`the request body broke off: ${msg.error}`));
        else controller?.close();
        break;
      }
      case 'load': if (!entry) adopt(msg, body); break;
    }
  }
});
if (entry) void start();
else {
  // A spare: pay now what a function's first call would pay later — undici's lazily loaded
  // Request/Response/Headers and the ESM loader's first dynamic import.
  await new Response(new Request('http://spare/', { method: 'POST', body: 'x' }).body).arrayBuffer();
  new Headers().append('x', 'y');
  await import('data:text/javascript,export default 1');
}

function runWasm(call, body) {
  try {
    const r = fn.run({ module: fn.module, args: [functionName], env: call.cgi.env, stdin: body, stdoutCap: call.cgi.stdoutCap });
    send({ t: 'cgi', id: call.id, exitCode: r.exitCode, stderr: r.stderr }, Buffer.from(r.stdout));
  } catch (err) {
    send({ t: 'error', id: call.id, code: 'FUNCTION_ERROR', message: `the module trapped: ${err instanceof Error ? err.message : format(err)}` });
  }
}

// Streamed request bodies being received (call id -> their ReadableStream's controller), and
// streamed answers being sent (call id -> their flow control).
const bodies = new Map();
const answers = new Map();
/** Unacknowledged bytes a streamed answer may have on its way: STREAM_WINDOW_BYTES in src/protocol/messages.ts. */
const STREAM_WINDOW_BYTES = 256 * 1024;

/** The request body as a stream its chunk frames feed (a body the gateway is still reading). */
function bodyStream(id) {
  return new ReadableStream({ start: (controller) => { bodies.set(id, controller); } });
}

async function invoke(call, body) {
  if (fn.style === 'wasm') return runWasm(call, body);
  const waitUntil = [];
  let ended = false;
  try {
    const input = call.bodyStream ? bodyStream(call.id) : body;
    const out = fn.style === 'fetch' ? await runFetch(fn.fn, fn.self, call, input, functionEnv, waitUntil)
      : await lambdaCall(call, call.bodyStream ? await wholeBody(input) : body);
    if (out.invalid) send({ t: 'error', id: call.id, code: 'FUNCTION_RESPONSE_INVALID', message: out.invalid });
    else if (out.stream) {
      send({ t: 'head', id: call.id, status: out.status, headers: out.headers });
      const error = await pump(call.id, out.stream);
      send({ t: 'end', id: call.id, ...(error && { error }), ...(waitUntil.length > 0 && { waitUntil: true }) });
    } else send({ t: 'result', id: call.id, status: out.status, headers: out.headers, ...(waitUntil.length > 0 && { waitUntil: true }) }, out.body);
    ended = true;
  } catch (err) {
    send({ t: 'error', id: call.id, code: 'FUNCTION_ERROR', message: errorMessage(err) });
  } finally {
    bodies.delete(call.id);
    if (!ended || waitUntil.length === 0) logged.delete(call.id);
  }
  if (ended && waitUntil.length > 0) await background(call, waitUntil);
}

function lambdaCall(call, body) {
  if (fn.style === 'lambda') return runLambda(fn.fn, call, body, functionName, memoryMb);
  const { event, context } = lambdaStreamInput(call, body, functionName, memoryMb);
  return runLambdaStream(fn.fn, event, context);
}

/** A request body streamed in, whole: Lambda-style handlers get it as one string. */
async function wholeBody(stream) {
  return Buffer.from(await new Response(stream).arrayBuffer());
}

/**
 * Sends a streamed answer's chunks as the function produces them, never more than the window
 * ahead of what the client has taken (acks). Returns why it broke off, or undefined.
 */
async function pump(id, stream) {
  const reader = stream.getReader();
  let unacked = 0;
  let wake;
  let cancelled = false;
  answers.set(id, {
    ack(bytes) {
      unacked -= bytes;
      if (unacked < STREAM_WINDOW_BYTES) wake?.();
    },
    cancel() {
      cancelled = true;
      reader.cancel(new Error('the client went away')).catch(() => {});
      wake?.();
    },
  });
  try {
    for (;;) {
      while (unacked >= STREAM_WINDOW_BYTES && !cancelled) await new Promise((resolve) => { wake = resolve; });
      if (cancelled) return 'the client went away';
      const { done, value } = await reader.read();
      if (done) return undefined;
      const bytes = chunkBytes(value);
      if (bytes.length === 0) continue;
      unacked += bytes.length;
      send({ t: 'chunk', id }, bytes);
    }
  } catch (err) {
    if (cancelled) return 'the client went away';
    console.error(`the answer's stream failed: ${err instanceof Error ? err.stack : format(err)}`);
    return errorMessage(err);
  } finally {
    answers.delete(id);
  }
}

/** A stream's chunk as bytes: Uint8Array (what Workers allows), or a string, encoded as UTF-8. */
function chunkBytes(value) {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  throw new TypeError(`a response stream must produce Uint8Array chunks (got ${value === null ? 'null' : typeof value})`);
}

/**
 * Work the call handed to ctx.waitUntil, after its answer went: waited for until the call's
 * deadline (timeout_ms), as Workers allow it to run on after the response. Its failures are
 * logged as the function's own.
 */
async function background(call, promises) {
  const timeLeft = call.deadlineMs - Date.now();
  let timer;
  const expired = new Promise((resolve) => { timer = setTimeout(resolve, Math.max(0, timeLeft), 'expired'); });
  let seen = 0;
  while (seen < promises.length) {
    const batch = promises.slice(seen);
    seen = promises.length;
    const results = await Promise.race([Promise.allSettled(batch), expired]);
    if (results === 'expired') {
      console.error(`ctx.waitUntil work was still running at the call's timeout_ms; no longer waited for`);
      break;
    }
    for (const r of results) if (r.status === 'rejected') console.error(`ctx.waitUntil promise rejected: ${errorMessage(r.reason)}`);
  }
  clearTimeout(timer);
  logged.delete(call.id);
  send({ t: 'done', id: call.id });
}
