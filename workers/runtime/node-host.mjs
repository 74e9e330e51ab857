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
import { lazyResponseClass } from './lazy-response.mjs';

let [entry, handlerName = '', functionName = '', memoryMb = '128', envJson = '{}'] = process.argv.slice(2);
// Workers' `env`: the route's own variables (they are in process.env too, beside PATH and HOME).
let functionEnv = Object.freeze(JSON.parse(envJson));
const LOG_CAP_BYTES = 8 * 1024;

const channel = process.env.FAAS_CHANNEL; // the worker's, not the function's
delete process.env.FAAS_CHANNEL;
// The direct data path (README "Data paths"): a second socket whose other end the worker hands to
// the gateway, which then sends this instance its calls itself. Same frames, calls told apart by
// the connection they came on.
const directFd = Number(process.env.FAAS_DIRECT_FD);
delete process.env.FAAS_DIRECT_FD;
// The worker stops an instance with SIGTERM, then SIGKILL after a grace period. In a container
// this host is pid 1, which the kernel spares signals it has no handler for: hence one here.
process.on('SIGTERM', () => process.exit(0));

/**
 * One connection calls come on, and what it has going: streamed request bodies being received
 * (call id -> their ReadableStream's controller), streamed answers being sent (call id -> their
 * flow control), output logged per call. Frames queued during one event-loop turn go out in one
 * write (as the worker's FrameWriter does): under load many calls finish per turn, and a write
 * per frame was most of this host's system time.
 */
function connection(socket, { direct }) {
  const ch = {
    /** Direct calls carry their own CPU and memory figures once the worker says the instance is accounted (`account`). */
    account: false,
    bodies: new Map(),
    answers: new Map(),
    logged: new Map(),
    queued: [],
    send(meta, body) {
      if (ch.queued.length === 0) setImmediate(flush);
      ch.queued.push(...encodeHostFrame(meta, body));
    },
  };
  function flush() {
    const out = ch.queued;
    ch.queued = [];
    if (socket.destroyed) return;
    socket.cork();
    for (const buf of out) socket.write(buf);
    socket.uncork();
  }
  const reader = new HostFrameReader();
  socket.on('data', (chunk) => {
    for (const { msg, body } of reader.push(chunk)) {
      switch (msg.t) {
        case 'invoke': if (fn) current.run({ ch, id: msg.id }, () => invoke(ch, msg, body)); break;
        case 'ack': ch.answers.get(msg.id)?.ack(msg.bytes); break;
        case 'cancel': ch.answers.get(msg.id)?.cancel(); break;
        case 'chunk': ch.bodies.get(msg.id)?.enqueue(new Uint8Array(body.buffer, body.byteOffset, body.length)); break;
        case 'end': {
          const controller = ch.bodies.get(msg.id);
          ch.bodies.delete(msg.id);
          if (msg.error) controller?.error(new Error(`the request body broke off: ${msg.error}`));
          else controller?.close();
          break;
        }
        case 'load': if (!direct && !entry) adopt(msg, body); break;
        case 'account': if (!direct && directChannel) directChannel.account = true; break;
      }
    }
  });
  return ch;
}

const workerSocket = channel ? net.connect(channel) : new net.Socket({ fd: 3, readable: true, writable: true });
workerSocket.on('error', () => process.exit(1));
workerSocket.on('close', () => process.exit(0));
const worker = connection(workerSocket, { direct: false });
let directChannel;
if (Number.isInteger(directFd) && directFd > 2) {
  const socket = new net.Socket({ fd: directFd, readable: true, writable: true });
  directChannel = connection(socket, { direct: true });
  // The gateway went away (or never took the socket): its streams stop, its bodies end short.
  socket.on('error', () => {});
  socket.on('close', () => {
    for (const answer of directChannel.answers.values()) answer.cancel();
    for (const controller of directChannel.bodies.values()) controller.error(new Error('the request body broke off: the gateway went away'));
    directChannel.bodies.clear();
  });
}

// What the function prints goes to whoever sent the call, tagged with the call, capped per call.
const current = new AsyncLocalStorage();
function capture(stream, text) {
  const call = current.getStore();
  const ch = call?.ch ?? worker;
  const id = call?.id ?? 0;
  const used = ch.logged.get(id) ?? 0;
  if (used >= LOG_CAP_BYTES) return;
  let out = text;
  if (used + Buffer.byteLength(out) > LOG_CAP_BYTES) {
    out = Buffer.from(out).subarray(0, LOG_CAP_BYTES - used).toString() + `\n[output truncated at ${LOG_CAP_BYTES} bytes]`;
  }
  ch.logged.set(id, used + Buffer.byteLength(text));
  ch.send({ t: 'log', id, stream, text: out });
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
// A Response whose string body becomes a stream only if asked for (lazy-response.mjs).
globalThis.Response = lazyResponseClass();

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
    worker.send({ t: 'ready' });
  } catch (err) {
    worker.send({ t: 'load_error', message: errorMessage(err) });
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

if (entry) void start();
else {
  // A spare: pay now what a function's first call would pay later — undici's lazily loaded
  // Request/Response/Headers and the ESM loader's first dynamic import.
  await new Response(new Request('http://spare/', { method: 'POST', body: 'x' }).body).arrayBuffer();
  new Headers().append('x', 'y');
  await import('data:text/javascript,export default 1');
}

function runWasm(ch, call, body) {
  try {
    const r = fn.run({ module: fn.module, args: [functionName], env: call.cgi.env, stdin: body, stdoutCap: call.cgi.stdoutCap });
    ch.send({ t: 'cgi', id: call.id, exitCode: r.exitCode, stderr: r.stderr }, Buffer.from(r.stdout));
  } catch (err) {
    ch.send({ t: 'error', id: call.id, code: 'FUNCTION_ERROR', message: `the module trapped: ${err instanceof Error ? err.message : format(err)}` });
  }
}

/** Unacknowledged bytes a streamed answer may have on its way: STREAM_WINDOW_BYTES in src/protocol/messages.ts. */
const STREAM_WINDOW_BYTES = 256 * 1024;

/** The request body as a stream its chunk frames feed (a body the gateway is still reading). */
function bodyStream(ch, id) {
  return new ReadableStream({ start: (controller) => { ch.bodies.set(id, controller); } });
}

async function invoke(ch, call, body) {
  if (fn.style === 'wasm') return runWasm(ch, call, body);
  const waitUntil = [];
  let ended = false;
  const before = ch.account ? process.resourceUsage() : undefined;
  try {
    const input = call.bodyStream ? bodyStream(ch, call.id) : body;
    const out = fn.style === 'fetch' ? await runFetch(fn.fn, fn.self, call, input, functionEnv, waitUntil)
      : await lambdaCall(call, call.bodyStream ? await wholeBody(input) : body);
    if (out.invalid) ch.send({ t: 'error', id: call.id, code: 'FUNCTION_RESPONSE_INVALID', message: out.invalid });
    else if (out.stream) {
      ch.send({ t: 'head', id: call.id, status: out.status, headers: out.headers });
      const error = await pump(ch, call.id, out.stream);
      ch.send({ t: 'end', id: call.id, ...(error && { error }), ...(waitUntil.length > 0 && { waitUntil: true }), ...usageSince(before) });
    } else {
      ch.send({ t: 'result', id: call.id, status: out.status, headers: out.headers, ...(waitUntil.length > 0 && { waitUntil: true }), ...usageSince(before) },
        out.body);
    }
    ended = true;
  } catch (err) {
    ch.send({ t: 'error', id: call.id, code: 'FUNCTION_ERROR', message: errorMessage(err), ...usageSince(before) });
  } finally {
    ch.bodies.delete(call.id);
    if (!ended || waitUntil.length === 0) ch.logged.delete(call.id);
  }
  if (ended && waitUntil.length > 0) await background(ch, call, waitUntil);
}

let rssAt = -Infinity;
let rss = 0;
/**
 * A direct call's figures (the worker reads the instance's cgroup for the calls it sends): the
 * process's CPU time while the call ran, and its memory — its peak RSS if that rose during the
 * call, else its RSS, read at most every 250 ms (a read costs ~12 µs). A node instance runs many
 * calls at once: each call in flight meanwhile gets the same figures, as from the cgroup.
 */
function usageSince(before) {
  if (!before) return undefined;
  const now = process.resourceUsage();
  const cpuUs = now.userCPUTime + now.systemCPUTime - before.userCPUTime - before.systemCPUTime;
  if (now.maxRSS > before.maxRSS) return { cpuUs, memPeak: now.maxRSS * 1024 };
  const ms = Date.now();
  if (ms - rssAt >= 250) {
    rss = process.memoryUsage.rss();
    rssAt = ms;
  }
  return { cpuUs, memPeak: rss };
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
async function pump(ch, id, stream) {
  const reader = stream.getReader();
  let unacked = 0;
  let wake;
  let cancelled = false;
  ch.answers.set(id, {
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
      ch.send({ t: 'chunk', id }, bytes);
    }
  } catch (err) {
    if (cancelled) return 'the client went away';
    console.error(`the answer's stream failed: ${err instanceof Error ? err.stack : format(err)}`);
    return errorMessage(err);
  } finally {
    ch.answers.delete(id);
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
async function background(ch, call, promises) {
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
  ch.logged.delete(call.id);
  ch.send({ t: 'done', id: call.id });
}
