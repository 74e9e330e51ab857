// A WebAssembly function's side of HTTP, CGI style (CONTRACT §3): the environment it gets, and
// its stdout read back as a response. Used for modules in threads (wasm-runner.ts) and in
// sandboxed processes (the node runtime host runs them there; instance.ts reads the result).
import type { FunctionSpec } from '../src/protocol/messages.js';
import type { CallOutcome, CallRequest } from './call.js';
import { MAX_RESPONSE_BYTES, oversizedAnswer } from '../src/protocol/messages.js';
import type { WasmTaskResult } from './runners/wasm-task.js';

/** What a module may write to stdout besides the body: its CGI header lines. */
const HEADER_ROOM_BYTES = 64 * 1024;

/** What a module gets for one call, in a thread or a sandbox: its environment and how much it may write to stdout. */
export function cgiCall(spec: FunctionSpec, req: CallRequest, body: Buffer): { env: Record<string, string>; stdoutCap: number } {
  return { env: cgiEnv(spec, req, body), stdoutCap: MAX_RESPONSE_BYTES + HEADER_ROOM_BYTES };
}

/** The CGI/1.1 meta-variables, then the function's own env. */
function cgiEnv(spec: FunctionSpec, req: CallRequest, body: Buffer): Record<string, string> {
  const env: Record<string, string> = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method,
    PATH_INFO: req.path,
    QUERY_STRING: req.query,
    CONTENT_LENGTH: String(body.length),
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_ID: req.requestId,
    ...(req.clientIp !== undefined && { REMOTE_ADDR: req.clientIp }),
  };
  for (let i = 0; i + 1 < req.headers.length; i += 2) {
    const name = req.headers[i]!;
    if (name === 'content-type') env.CONTENT_TYPE = req.headers[i + 1]!;
    else env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = req.headers[i + 1]!;
  }
  return { ...env, ...spec.config.env };
}

/** CGI response: header lines, a blank line, the body. `Status: 201 Created` sets the status. */
export function toOutcome(result: WasmTaskResult): CallOutcome {
  const out = Buffer.from(result.stdout);
  if (result.exitCode !== 0) {
    return { ok: false, code: 'FUNCTION_ERROR', message: `the module exited with status ${result.exitCode}${result.stderr ? `: ${result.stderr.trim().slice(-500)}` : ''}` };
  }
  const crlf = out.indexOf('\r\n\r\n');
  const lf = out.indexOf('\n\n');
  const [end, gap] = crlf >= 0 && (lf < 0 || crlf < lf) ? [crlf, 4] : [lf, 2];
  if (end < 0) return { ok: false, code: 'FUNCTION_RESPONSE_INVALID', message: 'the module wrote no CGI header block (header lines, then a blank line) before its body' };
  const body = out.subarray(end + gap);
  const oversized = oversizedAnswer(body.length);
  if (oversized) {
    return { ok: false, code: 'FUNCTION_RESPONSE_INVALID', message: oversized };
  }
  let status = 200;
  const headers: string[] = [];
  for (const line of out.subarray(0, end).toString('utf8').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { ok: false, code: 'FUNCTION_RESPONSE_INVALID', message: `the module wrote a header line without a name: ${JSON.stringify(line.slice(0, 100))}` };
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'status') status = Number.parseInt(value, 10);
    else headers.push(name, value);
  }
  return { ok: true, status, headers, body };
}
