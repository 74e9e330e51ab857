// One interface for every execution mode (STYLE.md pattern 4): a Runner starts a sandboxed
// runtime host for a function; the Instance (instance.ts) talks to it. Modes live one per
// file: process-runner.ts (bubblewrap), container-runner.ts (an OCI runtime); WebAssembly
// runs in threads (wasm-runner.ts). What every runner starts is the same runtime host with the
// same arguments: hostCommand() below.
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Duplex } from 'node:stream';
import type { FunctionSpec, Runtime } from '../../src/protocol/messages.js';
import type { FunctionCode } from '../function-code.js';

export interface SandboxProcess {
  /** Host pid of the sandbox's outermost process (for /proc sampling and killing); -1 until known. */
  readonly pid: number;
  /** What started it, for the log: bwrap, the python zygote, runc, … */
  readonly via: string;
  /**
   * The host's end of the frame channel: fd 3 inside a process sandbox (there at once), or a
   * Unix socket a container connects to once it runs (a promise until then).
   */
  readonly channel: Duplex | Promise<Duplex>;
  /**
   * A node host's second channel (fd DIRECT_FD inside), for the direct data path: the worker hands
   * this end to the gateway (direct-leases.ts), which then sends the instance its calls itself.
   */
  readonly direct?: Socket;
  /** The sandbox's own stdout/stderr: runtime crashes, sandbox errors. */
  readonly output: Readable[];
  /** SIGTERM to the function's processes: a chance to exit on their own before kill(). */
  terminate(): void;
  /** Kills the whole sandbox tree. */
  kill(): void;
  /** Resolves once the sandbox process has exited; `limit` names the limit the kernel enforced, if one did. */
  readonly exited: Promise<SandboxExit>;
  /**
   * What the instance's cgroup has used so far (cgroups.ts), read synchronously from its files;
   * undefined where the sandbox has no cgroup of ours to read (no cgroups, an engine's container).
   */
  usage?(): CgroupUsage | undefined;
}

/** An instance's resource use, from its cgroup: the per-call figures are differences of two reads. */
export interface CgroupUsage {
  /** CPU time of every process in the instance since it started, µs (cpu.stat usage_usec, cpuacct.usage). */
  readonly cpuUsec: number;
  /** Memory charged to the instance now, bytes (memory.current, memory.usage_in_bytes). */
  readonly memoryBytes: number;
  /** The most it was ever charged, bytes (memory.peak, memory.max_usage_in_bytes); undefined where the kernel keeps no peak. */
  readonly peakBytes: number | undefined;
}

/** The memory_mb of the spares a worker keeps from its start (the default memory_mb); spares.ts adds others on demand. */
export const GENERIC_MEMORY_MB = 128;

export interface SandboxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly limit?: string;
}

/**
 * SandboxProcess.exited of a sandbox the worker spawned: `settle` (its cleanup, and whether the
 * kernel stopped it at a limit) runs once, when the child exits or could not be started.
 */
export function exitOf(child: ChildProcess, settle: (code: number | null, signal: NodeJS.Signals | null) => SandboxExit | Promise<SandboxExit>): Promise<SandboxExit> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return; // 'error' may be followed by 'exit'
      settled = true;
      resolve(settle(code, signal));
    };
    child.once('exit', done);
    child.once('error', () => done(null, null));
  });
}

export interface Runner {
  readonly name: string;
  start(spec: FunctionSpec, code: FunctionCode): SandboxProcess;
  /**
   * A sandbox of this runtime without a function yet, to be given one with a `load` frame
   * (src/protocol/instance-frames.ts); its memory limit (and node's heap) is `memoryMb`, so only functions
   * with that memory_mb can adopt it.
   */
  startGeneric?(runtime: Runtime, memoryMb: number): SandboxProcess;
}

/** The fd a node host's direct channel is on inside a process sandbox (0–2 stdio, 3 the worker's channel, 4 bwrap's seccomp filter). */
export const DIRECT_FD = 5;

/** What a process sandbox of this runtime gets for the direct data path: node hosts serve a second channel, others none. */
export function directChannel(runtime: Runtime | undefined): { env: Record<string, string>; stdio: Array<'pipe'> } {
  return runtime === 'node' ? { env: { FAAS_DIRECT_FD: String(DIRECT_FD) }, stdio: ['pipe'] } : { env: {}, stdio: [] };
}

/** What every sandbox's environment holds besides the function's own `env`. */
export const BASE_ENV: Readonly<Record<string, string>> = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp' };
/** Processes and threads one instance may have: node runs ~12 threads, bwrap 2 processes. */
export const PIDS_MAX = 64;
/** Largest file a function may write (its private /tmp is 64 MiB; this makes one oversized write EFBIG). */
export const FILE_SIZE_MAX = 32 * 1024 * 1024;
export { MAX_RESPONSE_BYTES } from '../../src/protocol/messages.js';
/** Size of a sandbox's private /dev/shm (POSIX semaphores and shared memory: python's multiprocessing locks). */
export const SHM_BYTES = 16 * 1024 * 1024;
/** Open files per instance (node needs ≥ 32). */
export const OPEN_FILES_MAX = 1024;

export interface Interpreters {
  readonly node: string;
  readonly python: string;
}

/**
 * The runtime host's command line inside a sandbox (node-host.mjs or python-host.py under
 * /faas): with a function, or, for `spec` undefined, a spare that waits for a `load` frame.
 */
export function hostCommand(runtime: Runtime, bin: Interpreters, memoryMb: number, fn?: { spec: FunctionSpec; code: FunctionCode }): string[] {
  if (runtime === 'node' || runtime === 'wasm') {
    // A WebAssembly module runs in the node host (node:wasi; its warning said once is not output).
    const args = fn ? [fn.code.entry, fn.spec.config.handler ?? '', fn.spec.key, String(memoryMb), JSON.stringify(fn.spec.config.env)] : [];
    const flags = runtime === 'wasm' ? ['--disable-warning=ExperimentalWarning'] : [];
    return [bin.node, `--max-old-space-size=${memoryMb}`, ...flags, '/faas/node-host.mjs', ...args];
  }
  if (runtime === 'python') {
    const args = fn ? [fn.code.entry, fn.spec.config.handler ?? '', fn.spec.key, String(memoryMb)] : [];
    return [bin.python, '-B', '-u', '/faas/python-host.py', ...args];
  }
  // A Go function is a program of its own, the host compiled in (src/build/go.ts): no spare can become one.
  if (runtime === 'go' && fn) return [fn.code.entry, fn.spec.key, String(memoryMb)];
  throw new Error(`no runtime host for runtime "${runtime}"`);
}
