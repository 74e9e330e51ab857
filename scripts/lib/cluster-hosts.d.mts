// Types of cluster-hosts.mjs for test/integration/cluster.test.ts.
import type { ChildProcess } from 'node:child_process';

export interface ShResult { code: number | null; stdout: string; stderr: string }
export function sh(cmd: string, args: string[], opts?: { allowFail?: boolean; input?: string }): ShResult;
export function missingProgram(names: string[]): string | undefined;
export function netnsUnavailable(): string | undefined;
export function removeStale(): string[];

export interface HostProcess {
  name: string;
  host: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  log: string;
}

export class Hosts {
  readonly bridge: string;
  readonly subnet: string;
  readonly dir: string;
  readonly rootAddr: string;
  static create(names: string[]): Hosts;
  addr(name: string): string;
  exec(name: string, cmd: string, args: string[], opts?: { allowFail?: boolean; input?: string; user?: string }): ShResult;
  spawn(name: string, cmd: string, args: string[], opts?: { log?: string; env?: Record<string, string>; user?: string; label?: string }): HostProcess;
  snapshotTrees(): void;
  cutLink(name: string): void;
  restoreLink(name: string): void;
  stop(proc: HostProcess, opts?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<unknown>;
  teardown(): Promise<void>;
  teardownSync(): void;
}
