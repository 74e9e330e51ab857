// WebAssembly functions (runtime "wasm"): WASI modules run CGI style (CONTRACT §3) in piscina
// worker threads. Each version's module is compiled once per worker (the cold start) and sent
// to a thread per call; the call's timeout aborts the task, which terminates its thread (a
// module spinning in a loop cannot be interrupted any other way). WebAssembly is sandboxed by
// construction and the module gets no preopened folders and only the CGI environment plus
// the function's `env`; its memory is capped at `memory_mb` and its output at what a response
// may be (wasm-limits.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { FunctionSpec } from '../../src/protocol/messages.js';
import { cgiCall, toOutcome } from '../cgi.js';
import type { CallOutcome, CallRequest } from '../call.js';
import { withMemoryLimit } from './wasm-limits.js';
import type { WasmTask, WasmTaskResult } from './wasm-task.js';

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
  /** A folder per runner under the host's temp dir; each call's stdin/stdout/stderr in a subfolder. */
  private filesDir: string | undefined;
  private calls = 0;

  async invoke(spec: FunctionSpec, req: CallRequest, body: Buffer): Promise<{ outcome: CallOutcome; cold: boolean }> {
    const cold = !this.modules.has(spec.version);
    let module: WebAssembly.Module;
    try {
      module = await this.compile(spec);
    } catch (err) {
      this.modules.delete(spec.version);
      return { outcome: { ok: false, code: 'FUNCTION_ERROR', message: `function failed to load: ${(err as Error).message}` }, cold };
    }
    this.filesDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'faas-wasm-'));
    // Removed here when the call is over: a thread stopped at the timeout cannot (it left one
    // folder per timeout, with up to stdoutCap bytes of output in it, before this).
    const dir = path.join(this.filesDir, String(++this.calls));
    const task: WasmTask = { module, args: [spec.key], stdin: body, dir, ...cgiCall(spec, req, body) };
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
      void fs.promises.rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Forgets modules of versions no longer served. */
  forget(version: number): void {
    this.modules.delete(version);
  }

  /** Removes the call folders at once (a worker exits without waiting for this), then the threads. */
  async close(): Promise<void> {
    if (this.filesDir) fs.rmSync(this.filesDir, { recursive: true, force: true });
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

