// Runs inside a piscina worker thread: one WASI module, CGI style (CONTRACT §3). stdin, stdout
// and stderr are files in a private temp folder, because node:wasi takes real fds. The module
// gets no preopened folders, so it sees no file system at all.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import { capOutput } from './wasm-limits.js';

export interface WasmTask {
  readonly module: WebAssembly.Module;
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly stdin: Uint8Array;
  /** Bytes the module may write to stdout; past it, fd_write fails with EFBIG. */
  readonly stdoutCap: number;
  /**
   * The folder to create for the call's files, which the caller removes once the call is over:
   * a task stopped at its timeout (its thread terminated) never reaches its own cleanup. Without
   * it (a module in a sandbox, whose /tmp goes with it) the task makes and removes its own.
   */
  readonly dir?: string;
}

export interface WasmTaskResult {
  readonly exitCode: number;
  readonly stdout: Uint8Array;
  readonly stderr: string;
}

const STDERR_CAP_BYTES = 8 * 1024;
/** Bytes the module may write to stderr (the first STDERR_CAP_BYTES are kept for the error message). */
const STDERR_WRITE_CAP_BYTES = 1024 * 1024;

export default function run(task: WasmTask): WasmTaskResult {
  const dir = task.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'faas-wasm-'));
  if (task.dir) fs.mkdirSync(dir, { mode: 0o700 });
  const file = (name: string): string => path.join(dir, name);
  fs.writeFileSync(file('stdin'), task.stdin);
  const fds = [fs.openSync(file('stdin'), 'r'), fs.openSync(file('stdout'), 'w+'), fs.openSync(file('stderr'), 'w+')] as const;
  try {
    const wasi = new WASI({ version: 'preview1', args: task.args, env: task.env, stdin: fds[0], stdout: fds[1], stderr: fds[2], returnOnExit: true });
    let instance: WebAssembly.Instance | undefined;
    const memory = (): WebAssembly.Memory => instance!.exports.memory as WebAssembly.Memory;
    instance = new WebAssembly.Instance(task.module, capOutput(wasi.getImportObject() as WebAssembly.Imports, memory, task.stdoutCap, STDERR_WRITE_CAP_BYTES));
    const exitCode = wasi.start(instance);
    return {
      exitCode,
      stdout: fs.readFileSync(file('stdout')),
      stderr: fs.readFileSync(file('stderr')).subarray(0, STDERR_CAP_BYTES).toString('utf8'),
    };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
