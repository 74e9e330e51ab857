// The last step: the call goes to the fleet (or, asked so, into the async queue: async-accept.ts)
// as a child span of the client's trace, and its answer is written — whole, or streamed
// (stream-answer.ts) — with the gateway's headers and server-timing.
import { performance } from 'node:perf_hooks';
import type { InvocationResult } from '../../calls.js';
import { GatewayError, statusLine } from '../../errors.js';
import { endAnswer, headLength, writeGatewayHeaders } from '../end-answer.js';
import type { RequestBody } from '../request-body.js';
import { streamAnswer } from '../stream-answer.js';
import { removeHeader, type Call } from './call.js';
import { cpuTiming } from './trace.js';

/** Headers a function may not set: framing and the gateway's own headers are the gateway's business. */
const RESERVED = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer',
  'proxy-connection', 'date', 'x-request-id', 'x-faas-worker', 'server-timing']);
/** The gateway's rate-limit fields replace a function's own on a route with rate_limit. */
const LIMIT_HEADERS = new Set(['ratelimit', 'ratelimit-policy', 'retry-after']);

/** Runs the call with its body (or the first part of it, the rest coming through `bodyIn`), and answers. */
export function invoke(c: Call, body: Buffer, bodyIn?: RequestBody): void {
  if (c.allowedLater) { // --cluster-redis: once the limit allows it, unless answered (429, 408, 413) or gone meanwhile
    const allowed = c.allowedLater;
    c.allowedLater = undefined;
    void allowed.then((yes) => {
      if (yes && !c.state.aborted && !c.state.answered) invoke(c, body, bodyIn);
    });
    return;
  }
  const headers = c.headers;
  if (c.traceparent !== undefined) removeHeader(headers, 'traceparent');
  headers.push('traceparent', c.trace.child);
  const run = c.deps.asyncCalls?.asks(headers) ? c.deps.asyncCalls.accept : c.deps.invoke;
  run({ route: c.route!, requestId: c.requestId, method: c.method, path: c.path, query: c.query, headers, body, bodyIn, clientIp: c.clientIp })
    .then((result) => answer(c, result), (err: unknown) => {
      c.fail(err instanceof GatewayError ? err : new GatewayError('WORKER_PROTOCOL_ERROR', `internal error: ${String(err)}`));
    });
}

function answer(c: Call, result: InvocationResult): void {
  c.release();
  if (c.state.aborted || c.state.answered) {
    result.stream?.cancel();
    return;
  }
  const totalMs = performance.now() - c.started;
  c.state.answered = true;
  const { res, limitHeaders, cors } = c;
  const serverHeader = c.deps.serverHeader;
  res.cork(() => {
    res.writeStatus(statusLine(result.status));
    const h = result.headers;
    for (let i = 0; i + 1 < h.length; i += 2) {
      const name = h[i]!;
      if (!RESERVED.has(name) && !(limitHeaders && LIMIT_HEADERS.has(name)) && !(cors && name.startsWith('access-control-'))
        && !(serverHeader !== undefined && name === 'server')) res.writeHeader(name, h[i + 1]!);
    }
    res.writeHeader('x-request-id', c.requestId);
    if (result.workerId !== '') res.writeHeader('x-faas-worker', result.workerId); // '': stored for later (202)
    res.writeHeader('server-timing',
      `gateway;dur=${(totalMs - result.fnMs).toFixed(3)}, function;dur=${result.fnMs.toFixed(3)}, start;desc=${result.cold ? 'cold' : 'warm'}` +
      (result.cpuUs === undefined ? '' : `, cpu;dur=${cpuTiming(result.cpuUs)}`));
    if (limitHeaders) for (const [k, v] of limitHeaders) res.writeHeader(k, v);
    writeGatewayHeaders(res, serverHeader, cors);
    if (result.stream) streamAnswer(res, result.stream, c.state, c.head, (tail, failure) => {
      c.observe(result.status, { fnMs: tail?.fnMs ?? result.fnMs, cold: result.cold, worker: result.workerId, cpuUs: tail?.cpuUs,
        memPeak: tail?.memPeak, code: failure?.code, message: failure && `the answer was cut short: ${failure.message}` });
    });
    else endAnswer(res, result.body, c.head, false, c.head ? headLength(result.body, result.headers) : 0);
  });
  if (result.stream) return; // observed when it ends
  c.observe(result.status, { fnMs: result.fnMs, cold: result.cold, worker: result.workerId, cpuUs: result.cpuUs, memPeak: result.memPeak }, totalMs);
}
