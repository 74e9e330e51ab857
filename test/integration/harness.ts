// Starts the real gateway (dist/, built by `npm test` before vitest runs) with real workers
// on port 0 in a temp dir, and gives the test its ports and a separate SQLite connection.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { detectHostLimits } from '../../src/host/host-limits.js';

const CLI = path.resolve('dist/src/cli/main.js');
/** In the pure cgroup v2 guest (scripts/cgroup2-vm: QEMU without KVM) everything takes ~6× as long. */
export const IN_VM = process.env.FAAS_CGROUP2_VM === '1';
export const SLOW = IN_VM ? 6 : 1;

export interface Gateway {
  readonly http: string;
  readonly admin: string;
  readonly dir: string;
  readonly dbPath: string;
  readonly runDir: string;
  readonly proc: ChildProcess;
  /** Everything the gateway and its workers wrote to stderr so far. */
  logs(): string;
  /** The worker's log lines about one route's instances (`instance started`, `instance exited`, …), parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  instanceLog(key: string): Array<Record<string, any>>;
  /** The access log lines of one request (by its x-request-id), parsed: one once the gateway's buffered log has written it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  accessLog(requestId: string): Array<Record<string, any>>;
  /** An operator's connection to the same database. */
  sql(): Database.Database;
  stop(): Promise<void>;
}

export async function startGateway(args: string[] = [], opts: {
  workers?: number; syncMs?: number; env?: Record<string, string>;
  /** Runs before the gateway starts, with the path its database will have (which does not exist yet). */
  beforeStart?: (dbPath: string) => void;
  /** Run the gateway as this user (and group) instead of the test's: its folder is made theirs. */
  uid?: number;
  /** The folder of a gateway started before (killed, say): this one uses its database and run dir. */
  dir?: string;
} = {}): Promise<Gateway> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'faas-test-'));
  fs.chmodSync(dir, 0o755); // the sandbox user (uid 65534) mounts code from the run dir inside it
  if (opts.uid !== undefined) fs.chownSync(dir, opts.uid, opts.uid);
  const dbPath = path.join(dir, 'faas.db');
  opts.beforeStart?.(dbPath);
  const runDir = path.join(dir, 'run');
  // In the guest a worker reading /proc for 60 sandbox processes can take longer than the
  // default report period's tolerance (two periods): it would be taken for gone.
  const vmArgs = IN_VM && !args.includes('--report-ms') ? ['--report-ms', '2000'] : [];
  const proc = spawn(process.execPath, [CLI, 'gateway', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1',
    '--db', dbPath, '--run-dir', runDir, '--workers', String(opts.workers ?? 2), '--sync-ms', String(opts.syncMs ?? 200), ...vmArgs, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FAAS_HOST_SECRET: 'must-not-leak', ...opts.env },
    ...(opts.uid !== undefined && { uid: opts.uid, gid: opts.uid }),
  });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const ports = await new Promise<{ http: number; admin: number }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start in ${30 * SLOW} s:\n${stderr}`)), 30_000 * SLOW);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening http=(\d+) admin=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ http: Number(m[1]), admin: Number(m[2]) });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening:\n${stderr}`));
    });
  });
  const connections: Database.Database[] = [];
  // The gateway is listening after at most 12 s with the workers that are up; in the guest they
  // may need longer: wait until they all are.
  if (IN_VM) await eventually(async () => (await fetch(`http://127.0.0.1:${ports.admin}/readyz`)).ok, 20_000, 500);
  return {
    http: `http://127.0.0.1:${ports.http}`,
    admin: `http://127.0.0.1:${ports.admin}`,
    dir, dbPath, runDir, proc,
    logs: () => stderr,
    instanceLog: (key) => stderr.split('\n').filter((l) => l.includes(`"instance":"${key}#`)).map((l) => JSON.parse(l)),
    accessLog: (requestId) => stderr.split('\n').filter((l) => l.includes('"msg":"request"') && l.includes(`"requestId":${JSON.stringify(requestId)}`))
      .map((l) => JSON.parse(l)),
    sql: () => {
      const db = new Database(dbPath);
      db.pragma('busy_timeout = 5000');
      connections.push(db);
      return db;
    },
    stop: async () => {
      for (const db of connections) db.close();
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, sleep(8000 * SLOW)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until fn returns a truthy value or the time runs out (SLOW times as long in the guest). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 5000, stepMs = 50): Promise<T> {
  timeoutMs *= SLOW;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await sleep(stepMs);
  }
}

export function fn(v: Record<string, unknown>): string {
  return JSON.stringify(v);
}

/** Inserts a route with an operator's connection; resolves with its first answer that is not a 404. */
export async function deploy(gw: Gateway, key: string, config: Record<string, unknown>): Promise<Response> {
  gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(key, fn(config));
  const at = key.indexOf(':');
  return eventually(async () => {
    const res = await fetch(`${gw.http}${key.slice(at + 1)}`, { method: key.slice(0, at) });
    return res.status === 404 ? undefined : res;
  });
}

declare global {
  // Tests read JSON bodies loosely and assert on their fields.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  interface Response { json(): Promise<any> }
}

/** Every execution mode of node and python functions; suites that cover isolation run in each. */
export const MODES = ['process', 'container'] as const;

/**
 * What sandboxes could leave on the host: processes of the sandbox user (uid 65534) and
 * cgroup folders of workers and their containers (faas-*, in every hierarchy). A suite takes
 * it before it starts its gateway and expects the same after stopping it.
 */
export function hostResidue(): { sandboxProcesses: number; cgroupFolders: string[] } {
  return { sandboxProcesses: sandboxProcesses(), cgroupFolders: cgroupFolders() };
}

/**
 * Waits (a few seconds at most: sandboxes die as their workers exit) until the host has nothing
 * that was not there before: no more sandbox processes, no new cgroup folder. (Folders that were
 * there may be gone: a worker removes what dead workers left.)
 */
export async function expectNoResidue(before: ReturnType<typeof hostResidue>): Promise<void> {
  const clean = (): boolean => {
    const now = hostResidue();
    return now.sandboxProcesses <= before.sandboxProcesses && now.cgroupFolders.every((f) => before.cgroupFolders.includes(f));
  };
  await eventually(async () => clean(), 5000).catch(() => {});
  if (!clean()) throw new Error(`left on the host: before ${JSON.stringify(before)}, after ${JSON.stringify(hostResidue())}`);
}

/** Processes on the host owned by the sandbox user (uid 65534). */
export function sandboxProcesses(): number {
  return pidsOfUid((uid) => uid === 65534).length;
}

/** Pids of the host's processes whose real uid `which` picks. */
export function pidsOfUid(which: (uid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${name}/status`, 'utf8'))?.[1];
      if (uid !== undefined && which(Number(uid))) pids.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/**
 * Worker cgroup folders (faas-WORKER-PID) in any hierarchy, under the folders this process is in
 * (on a pure cgroup v2 host, under the cgroup the gateway delegates: the parent of `supervisor`).
 */
export function cgroupFolders(): string[] {
  const found: string[] = [];
  const host = detectHostLimits();
  if (host.kind === 'v2') {
    try {
      for (const name of fs.readdirSync(host.base!)) if (name.startsWith('faas-')) found.push(path.join(host.base!, name));
    } catch {
      /* gone */
    }
    return found.sort();
  }
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return found;
  }
  for (const line of lines) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const dir = path.join('/sys/fs/cgroup', m[1] === '' ? 'unified' : m[1]!.replace(/^name=/, '').split(',')[0]!, m[2]!);
    try {
      for (const name of fs.readdirSync(dir)) if (name.startsWith('faas-')) found.push(path.join(dir, name));
    } catch {
      /* not mounted here */
    }
  }
  return found.sort();
}
