// Spawns the worker processes and keeps them running: a worker that exits is restarted after
// a backoff that doubles per quick failure (100 ms … 10 s) and resets once a worker has
// stayed up for a while. Workers get a stdin pipe from the gateway and exit when it closes,
// so even a SIGKILLed gateway leaves no worker behind (Node has no PR_SET_PDEATHSIG). They also
// get Node's IPC channel, over which the direct data path's leases travel (src/protocol/direct.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { ToWorker } from '../protocol/direct.js';
import { fileURLToPath } from 'node:url';
import { allowedCpus } from '../host/cpus.js';
import type { Log } from '../protocol/log.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;
const STABLE_AFTER_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export interface SupervisedWorker {
  readonly id: string;
  pid: number | undefined;
  restarts: number;
  startedAtMs: number;
}

export interface SupervisorOptions {
  readonly count: number;
  readonly runDir: string;
  readonly reportMs: number;
  /** Start worker i on CPU i mod n of the gateway's own CPUs (taskset); its sandboxes inherit it. */
  readonly pin: boolean;
  readonly log: Log;
  /** Called when a worker process exits (its connection and state must be dropped). */
  readonly onExit: (id: string, pid: number | undefined) => void;
  /** A message from a worker's IPC channel, with the socket it passed if any (direct leases). */
  readonly onMessage?: (id: string, msg: unknown, socket: Socket | undefined) => void;
  /** Sent to each worker as it starts (the direct path's `direct`). */
  readonly hello?: ToWorker;
}

export class Supervisor {
  readonly workers = new Map<string, SupervisedWorker>();
  private readonly children = new Map<string, ChildProcess>();
  private readonly backoff = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly cpuOf = new Map<string, number>();
  private stopping = false;

  constructor(private readonly opts: SupervisorOptions) {}

  /** Throws, before any worker starts, when --pin cannot be honoured. */
  start(): void {
    const cpus = this.opts.pin ? pinCpus() : [];
    for (let i = 1; i <= this.opts.count; i++) {
      const id = `w${i}`;
      this.workers.set(id, { id, pid: undefined, restarts: 0, startedAtMs: 0 });
      if (this.opts.pin) this.cpuOf.set(id, cpus[(i - 1) % cpus.length]!);
    }
    if (this.opts.pin) this.opts.log({ msg: 'workers pinned', cpus: Object.fromEntries(this.cpuOf) });
    for (const id of this.workers.keys()) this.spawn(id);
  }

  /** Sends a worker a message over its IPC channel; false when it has none now (exited, restarting). */
  send(id: string, msg: ToWorker): boolean {
    const child = this.children.get(id);
    if (!child?.connected) return false;
    child.send(msg, (err: Error | null) => {
      if (err) this.opts.log({ level: 'warn', msg: 'could not send to a worker over IPC', worker: id, what: msg.t, error: err.message });
    });
    return true;
  }

  /** SIGTERM every worker, then SIGKILL whatever is left after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    const exits = [...this.children.values()].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }));
    const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([Promise.all(exits), grace]);
    for (const child of this.children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  private spawn(id: string): void {
    const w = this.workers.get(id)!;
    const args = [CLI, 'worker', '--id', id, '--run-dir', this.opts.runDir, '--report-ms', String(this.opts.reportMs)];
    const cpu = this.cpuOf.get(id);
    // taskset sets the mask and execs node: the pid the gateway knows stays the worker's.
    const [file, argv] = cpu === undefined ? [process.execPath, args] : ['taskset', ['--cpu-list', String(cpu), process.execPath, ...args]];
    const child = spawn(file, argv, {
      stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, FAAS_SUPERVISED: '1' },
    });
    child.channel?.unref(); // stdin is what ties the two together; this must not keep the gateway up
    child.on('message', (msg, handle) => this.opts.onMessage?.(id, msg, handle instanceof Object ? handle as Socket : undefined));
    w.pid = child.pid;
    w.startedAtMs = Date.now();
    this.children.set(id, child);
    if (this.opts.hello) this.send(id, this.opts.hello);
    child.stdin?.on('error', () => {});
    child.on('error', (err) => this.opts.log({ level: 'error', msg: 'worker failed to spawn', worker: id, error: err.message }));
    child.on('exit', (code, signal) => {
      this.children.delete(id);
      this.opts.onExit(id, w.pid);
      if (this.stopping) return;
      const upMs = Date.now() - w.startedAtMs;
      const delay = upMs > STABLE_AFTER_MS ? MIN_BACKOFF_MS : Math.min(MAX_BACKOFF_MS, (this.backoff.get(id) ?? MIN_BACKOFF_MS / 2) * 2);
      this.backoff.set(id, delay);
      w.restarts++;
      this.opts.log({ level: 'warn', msg: 'worker exited; restarting', worker: id, pid: w.pid, code, signal, restartInMs: delay });
      w.pid = undefined;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.stopping) this.spawn(id);
      }, delay);
      this.timers.add(timer);
    });
  }
}

/** The CPUs --pin hands out: the gateway's own affinity mask. */
function pinCpus(): number[] {
  const cpus = allowedCpus();
  if (!cpus || cpus.length === 0) throw new Error('--pin on: could not read the CPUs this process may use (Cpus_allowed_list in /proc/self/status)');
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) throw new Error(`--pin on needs taskset (util-linux) on the PATH: ${probe.error?.message ?? `exit ${probe.status}`}`);
  return cpus;
}
