// One interface for every execution mode (STYLE.md pattern 4): a Runner starts a sandboxed
// runtime host for a function; the Instance (instance.ts) talks to it. Modes live one per
// file: process-runner.ts now; container and wasm runners come with issue 2/6.
import type { Readable, Duplex } from 'node:stream';
import type { FunctionSpec, Runtime } from '../src/protocol/messages.js';
import type { FunctionCode } from './function-code.js';

export interface SandboxProcess {
  /** Host pid of the sandbox's outermost process (for /proc sampling and killing). */
  readonly pid: number;
  /** The host's end of the frame channel (fd 3 inside the sandbox). */
  readonly channel: Duplex;
  /** The sandbox's own stdout/stderr: runtime crashes, sandbox errors. */
  readonly output: Readable[];
  /** Kills the whole sandbox tree. */
  kill(): void;
  /** Resolves once the sandbox process has exited; `limit` names the limit the kernel enforced, if one did. */
  readonly exited: Promise<SandboxExit>;
}

/** Heap and cgroup memory limit of a sandbox from startGeneric(): only functions with this memory_mb (the default) can adopt one. */
export const GENERIC_MEMORY_MB = 128;

export interface SandboxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly limit?: string;
}

export interface Runner {
  readonly name: string;
  start(spec: FunctionSpec, code: FunctionCode): SandboxProcess;
  /** A sandbox of this runtime without a function yet, to be given one with a `load` frame (instance-frames.ts). */
  startGeneric?(runtime: Runtime): SandboxProcess;
}
