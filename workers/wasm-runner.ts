// WebAssembly functions (runtime "wasm"): WASI modules run CGI style (CONTRACT §3) in piscina
// worker threads. Each version's module is compiled once per worker (the cold start) and sent
// to a thread per call; the call's timeout aborts the task, which terminates its thread (a
// module spinning in a loop cannot be interrupted any other way). WebAssembly is sandboxed by
// construction and the module gets no preopened folders and only the CGI environment plus
// the function's `env`; its memory is capped at `memory_mb` and its output at what a response
// may be (wasm-limits.ts).
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { FunctionSpec } from '../src/protocol/messages.js';
import { MAX_RESPONSE_BYTES, type CallOutcome } from './instance.js';
import type { CallRequest } from './pool.js';
import { withMemoryLimit } from './wasm-limits.js';
import type { WasmTask, WasmTaskResult } from './wasm-task.js';

/** What a module may write to stdout besides the body: its CGI header lines. */
const HEADER_ROOM_BYTES = 64 * 1024;
const TASK_FILE = fileURLToPath(new URL('./wasm-task.js', import.meta.url));

export class WasmRunner {
  private readonly piscina = new Piscina({
    filename: TASK_FILE,
    minThreads: 0, // no thread until a wasm function is called: most workers may never run one
    maxThreads: Math.max(2, os.availableParallelism()),
    idleTimeout: 60_000,
    resourceLimits: { maxOldGenerationSizeMb: 64 },
  });
  private readonly modules = new Map<number, Promise<WebAssembly.Module>>();

  async invoke(spec: FunctionSpec, req: CallRequest, body: Buffer): Promise<{ outcome: CallOutcome; cold: boolean }> {
    const cold = !this.modules.has(spec.version);
    let module: WebAssembly.Module;
    try {
      module = await this.compile(spec);
    } catch (err) {
      this.modules.delete(spec.version);
      return { outcome: { ok: false, code: 'FUNCTION_ERROR', message: `function failed to load: ${(err as Error).message}` }, cold };
    }
    const task: WasmTask = { module, args: [spec.key], env: cgiEnv(spec, req, body), stdin: body, stdoutCap: MAX_RESPONSE_BYTES + HEADER_ROOM_BYTES };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), spec.config.timeoutMs);
    try {
      const result = (await this.piscina.run(task, { signal: abort.signal })) as WasmTaskResult;
      return { outcome: toOutcome(result), cold };
    } catch (err) {
      if (abort.signal.aborted) {
        return { outcome: { ok: false, code: 'FUNCTION_TIMEOUT', message: `the function ran past its timeout_ms of ${spec.config.timeoutMs} ms; its thread was stopped` }, cold };
      }
      return { outcome: { ok: false, code: 'FUNCTION_ERROR', message: `the module trapped: ${(err as Error).message}` }, cold };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Forgets modules of versions no longer served. */
  forget(version: number): void {
    this.modules.delete(version);
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }

  private compile(spec: FunctionSpec): Promise<WebAssembly.Module> {
    let module = this.modules.get(spec.version);
    if (!module) {
      const { code, path } = spec.config;
      const bytes = code !== undefined ? Buffer.from(code, 'base64') : fs.readFileSync(path!);
      module = (async () => WebAssembly.compile(withMemoryLimit(bytes, spec.config.memoryMb * 1024 * 1024)))();
      this.modules.set(spec.version, module);
    }
    return module;
  }
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
  if (body.length > MAX_RESPONSE_BYTES) {
    return { ok: false, code: 'FUNCTION_RESPONSE_INVALID', message: `the response body of ${body.length} bytes is over the limit of ${MAX_RESPONSE_BYTES} bytes (6 MiB)` };
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
