// The worker's side of the python zygote (runtime/python-zygote.py): a root fork server with
// python-host.py and much of the standard library imported, so a python process sandbox starts
// as a fork that isolates itself (~8 ms to a first answer) instead of bwrap plus a new interpreter (~40 ms). The
// process runner uses it for python instances of their own (code by `path`, or no pre-started
// sandbox of the function's memory_mb) when the worker runs as root with cgroups; otherwise,
// or while the zygote is down, bwrap.
//
// An instance it starts is not the worker's child: the zygote says when one exits, and the
// worker kills one through its cgroup. The channel is a socket the child connects to before it
// drops its privileges (channel-socket.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { Log } from '../../src/protocol/log.js';
import type { FunctionSpec } from '../../src/protocol/messages.js';
import type { Cgroups, InstanceCgroup } from '../cgroups.js';
import { listenForChannel } from '../channel-socket.js';
import type { FunctionCode } from '../function-code.js';
import { BASE_ENV, FILE_SIZE_MAX, GENERIC_MEMORY_MB, OPEN_FILES_MAX, PIDS_MAX, SHM_BYTES, type SandboxExit, type SandboxProcess } from './runner.js';

export interface PythonZygoteOptions {
  /** Holds python-host.py and python-zygote.py (the worker's RUN_DIR/runtime). */
  readonly runtimeDir: string;
  /** This worker's folder for the zygote's new roots and the instances' channel sockets. */
  readonly stateDir: string;
  readonly seccompFilter: string;
  readonly cgroups: Cgroups;
  readonly log: Log;
  readonly pythonPath?: string;
  readonly tmpBytes?: number;
}

type ZygoteMessage =
  | { t: 'cell'; id: number; pid: number }
  | { t: 'started'; id: number; pid: number }
  | { t: 'failed'; id: number; message: string }
  | { t: 'exit'; pid: number; code: number | null; signal: number | null };

const NOBODY = 65534;
/** After the zygote dies, how long before the next python start may start a new one. */
const RESTART_AFTER_MS = 5_000;
/** Not at once after a start: preparing the next cell (a cgroup move) would compete with it. */
const CELL_DELAY_MS = 250;

/** A child the zygote keeps ready in its cgroups and namespaces (see python-zygote.py). */
interface Cell {
  readonly id: number;
  readonly cg: InstanceCgroup;
  pid: number;
}

export class PythonZygote {
  private proc: ChildProcess | undefined;
  private downSinceMs = -Infinity;
  private seq = 0;
  private readonly waiting = new Map<number, (msg: ZygoteMessage) => void>();
  private readonly exits = new Map<number, (exit: SandboxExit) => void>();
  private stopped = false;
  private cell: Cell | undefined;
  /** Cgroup removals under way (a cgroup is busy for a moment after its last process exits). */
  private readonly removals = new Set<Promise<void>>();

  constructor(private readonly opts: PythonZygoteOptions) {
    fs.rmSync(opts.stateDir, { recursive: true, force: true }); // what an earlier worker of this id left
    fs.mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    if (this.ensure()) this.prepareCell();
  }

  /** Whether a start would go to the zygote now (it may be restarting after a crash). */
  get available(): boolean {
    return this.ensure();
  }

  start(spec: FunctionSpec, code: FunctionCode): SandboxProcess {
    const { config } = spec;
    const id = ++this.seq;
    const dir = path.join(this.opts.stateDir, `i${id}`);
    const listener = listenForChannel(dir, NOBODY);
    const cell = this.cell !== undefined && this.cell.pid > 0 ? this.cell : undefined;
    this.cell = undefined;
    setTimeout(() => this.prepareCell(), CELL_DELAY_MS).unref();
    const limits = { memoryBytes: config.memoryMb * 1024 * 1024, cpu: config.cpu };
    const cg = cell ? this.opts.cgroups.resize(cell.cg, limits) : this.opts.cgroups.create({ ...limits, pidsMax: PIDS_MAX });
    if (cell) this.exits.delete(cell.pid); // from now on its exit is this instance's
    let pid = -1;
    let exitedResolve!: (exit: SandboxExit) => void;
    const exited = new Promise<SandboxExit>((resolve) => {
      exitedResolve = (exit) => {
        const limit = this.opts.cgroups.limitHit(cg);
        this.opts.cgroups.killAll(cg);
        void this.opts.cgroups.remove(cg).catch(() => {});
        listener.close();
        fs.rmSync(dir, { recursive: true, force: true });
        resolve({ ...exit, ...(limit ? { limit } : {}) });
      };
    });
    this.waiting.set(id, (msg) => {
      if (msg.t === 'started') {
        pid = msg.pid;
        this.exits.set(pid, exitedResolve);
      } else {
        this.opts.log({ level: 'warn', msg: 'python zygote could not start an instance', key: spec.key, error: msg.t === 'failed' ? msg.message : '' });
        exitedResolve({ code: null, signal: null });
      }
    });
    this.send({
      t: 'start', id, ...(cell ? { cell: cell.id } : {}), channel: listener.path, entry: code.entry, handler: config.handler ?? '', key: spec.key, memoryMb: config.memoryMb,
      mounts: [code, ...code.extra].map((m) => [m.hostPath, m.mountPath]), env: { ...BASE_ENV, ...config.env }, cgroups: cg.dirs,
      tmpBytes: this.opts.tmpBytes ?? 64 * 1024 * 1024, shmBytes: SHM_BYTES, openFiles: OPEN_FILES_MAX, fileSize: FILE_SIZE_MAX,
    });
    const notMonitor = (p: number): boolean => p !== pid;
    return {
      get pid() {
        return pid;
      },
      via: 'python zygote',
      channel: listener.channel,
      output: [] as Readable[], // the instance's stdout/stderr go to the zygote's stderr, which the worker logs
      // The monitor (root, outside the sandbox) would die of SIGTERM and take the sandbox with it.
      terminate: () => this.opts.cgroups.terminateAll(cg, notMonitor),
      kill: () => this.opts.cgroups.killAll(cg),
      exited,
      usage: () => this.opts.cgroups.usage(cg),
    };
  }

  /** Stops the zygote (its children die with it) and removes the spare cell's cgroups. */
  async close(): Promise<void> {
    this.stopped = true;
    const proc = this.proc;
    if (proc) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.stdin?.end();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    }
    if (this.cell) this.dropCell(this.cell);
    await Promise.all(this.removals);
  }

  /** Has the zygote fork the next instance's child ahead of time, in fresh cgroups. */
  private prepareCell(): void {
    if (this.cell || this.stopped || !this.ensure()) return;
    const cg = this.opts.cgroups.create({ memoryBytes: GENERIC_MEMORY_MB * 1024 * 1024, pidsMax: PIDS_MAX });
    const cell: Cell = { id: ++this.seq, cg, pid: -1 };
    this.cell = cell;
    this.waiting.set(cell.id, (msg) => {
      if (msg.t !== 'cell') return this.dropCell(cell);
      cell.pid = msg.pid;
      this.exits.set(msg.pid, () => this.dropCell(cell)); // died unused
    });
    this.send({ t: 'cell', id: cell.id, cgroups: cg.dirs });
  }

  private dropCell(cell: Cell): void {
    if (this.cell === cell) this.cell = undefined;
    this.opts.cgroups.killAll(cell.cg);
    const removal = this.opts.cgroups.remove(cell.cg).catch(() => {});
    this.removals.add(removal);
    void removal.finally(() => this.removals.delete(removal));
  }

  /** Starts the zygote if it is down and may be restarted; whether it is up. */
  private ensure(): boolean {
    if (this.proc) return true;
    if (this.stopped || Date.now() - this.downSinceMs < RESTART_AFTER_MS) return false;
    const script = path.join(this.opts.runtimeDir, 'python-zygote.py');
    const proc = spawn(this.opts.pythonPath ?? '/usr/bin/python3', ['-B', '-u', script, this.opts.runtimeDir, this.opts.seccompFilter, path.join(this.opts.stateDir, 'root')], {
      env: {},
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = proc;
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => this.onMessage(line));
    readline.createInterface({ input: proc.stderr! }).on('line', (line) => this.opts.log({ level: 'warn', msg: 'python zygote', text: line }));
    proc.stdin!.on('error', () => {});
    proc.once('exit', (code, signal) => {
      this.proc = undefined;
      this.downSinceMs = Date.now();
      if (!this.stopped) this.opts.log({ level: 'error', msg: 'python zygote exited; python instances start with bwrap until it is back', code, signal });
      // Its instances die with it (parent-death signal); their exit reports never come.
      for (const resolve of [...this.exits.values()]) resolve({ code: null, signal: 'SIGKILL' });
      this.exits.clear();
      if (this.cell) this.dropCell(this.cell);
      for (const answer of this.waiting.values()) answer({ t: 'failed', id: 0, message: 'the zygote exited' });
      this.waiting.clear();
    });
    proc.once('error', (err) => this.opts.log({ level: 'error', msg: 'python zygote did not start', error: err.message }));
    return true;
  }

  private send(msg: object): void {
    this.proc?.stdin?.write(`${JSON.stringify(msg)}\n`);
  }

  private onMessage(line: string): void {
    let msg: ZygoteMessage;
    try {
      msg = JSON.parse(line) as ZygoteMessage;
    } catch {
      this.opts.log({ level: 'warn', msg: 'python zygote wrote a line that is not JSON', text: line.slice(0, 200) });
      return;
    }
    if (msg.t === 'exit') {
      const resolve = this.exits.get(msg.pid);
      this.exits.delete(msg.pid);
      resolve?.({ code: msg.code, signal: msg.signal === null ? null : signalName(msg.signal) });
      return;
    }
    const answer = this.waiting.get(msg.id);
    this.waiting.delete(msg.id);
    answer?.(msg);
  }
}

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function signalName(n: number): NodeJS.Signals {
  return SIGNAL_NAMES.get(n) ?? 'SIGKILL';
}

/** A zygote needs root (it mounts and changes uid) and cgroups (its instances' limits). */
export function zygoteUsable(cgroups: Cgroups | undefined): cgroups is Cgroups {
  return cgroups !== undefined && process.getuid?.() === 0;
}
