// Process mode: each instance is a bubblewrap sandbox (SANDBOX.md's recipe), spawned as the
// unprivileged user 65534 — never bwrap as root with --uid, which would leave the function
// host uid 0. Inside: every namespace unshared (no network), a read-only view of /usr and the
// function's code, a private size-capped /tmp, a cleared environment plus the function's
// `env`, a seccomp filter (workers/seccomp/filter.c: no sockets but AF_UNIX, no new
// namespaces, no ptrace, mount, keyctl, bpf, io_uring, …), and --die-with-parent so no
// sandbox outlives its worker; with cgroups (cgroups.ts), `memory_mb` and a pids limit per
// instance, and a kill that reaches every process the instance made.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import type { FunctionSpec, Runtime } from '../../src/protocol/messages.js';
import type { FunctionCode } from '../function-code.js';
import type { Cgroups, InstanceCgroup, InstanceLimits } from '../cgroups.js';
import type { PythonZygote } from './python-zygote.js';
import {
  BASE_ENV, DIRECT_FD, directChannel, FILE_SIZE_MAX, hostCommand, OPEN_FILES_MAX, PIDS_MAX, SHM_BYTES,
  exitOf, type Runner, type SandboxProcess,
} from './runner.js';

export interface ProcessRunnerOptions {
  /** Host folder holding node-host.mjs and python-host.py, readable by the sandbox user. */
  readonly runtimeDir: string;
  readonly sandboxUid?: number;
  readonly bwrapPath?: string;
  readonly nodePath?: string;
  readonly pythonPath?: string;
  readonly tmpBytes?: number;
  /** The BPF program bwrap installs (scripts/build-seccomp.sh writes it at build time). */
  readonly seccompFilter?: string;
  /** Per-instance memory and pids limits; undefined where the host has none to give. */
  readonly cgroups?: Cgroups;
  /** Starts python instances of their own as forks (python-zygote.ts), while it is up. */
  readonly zygote?: PythonZygote;
}

/**
 * rlimits set inside the sandbox before the runtime starts (util-linux prlimit, then exec):
 * open files and the largest file a function may write. No CPU rlimit: it is cumulative per
 * process, so it would end a warm instance after its total CPU time; the wall-clock
 * timeout_ms ends runaway calls.
 */
export const RLIMITS = ['/usr/bin/prlimit', `--nofile=${OPEN_FILES_MAX}:${OPEN_FILES_MAX}`, `--fsize=${FILE_SIZE_MAX}`, '--'];

/** Address space a python interpreter and its host take beyond the function's memory_mb (~25 MiB seen). */
const PYTHON_AS_ROOM_MB = 32;
export const DEFAULT_FILTER = fileURLToPath(new URL('../../seccomp/filter.bpf', import.meta.url));
/** The fd the filter is passed on: 0–2 are stdio, 3 is the frame channel. */
const SECCOMP_FD = 4;

const NOBODY = 65534;

export class ProcessRunner implements Runner {
  readonly name = 'process';
  private readonly uid: number;
  private readonly bwrap: string;
  private readonly node: string;
  private readonly python: string;
  private readonly tmpBytes: number;
  private readonly seccompFilter: string;
  private readonly asRoot = process.getuid?.() === 0;
  /**
   * Without cgroups, as root, each sandbox gets a host uid of its own (65534 inside), so that
   * RLIMIT_NPROC (which counts a uid's processes host-wide) is a pids limit per sandbox.
   */
  private readonly slots: SlotUids | undefined;

  constructor(private readonly opts: ProcessRunnerOptions) {
    this.slots = this.asRoot && !opts.cgroups ? new SlotUids(SLOT_UID_BASE + (process.pid % 100_000) * SLOTS_PER_WORKER) : undefined;
    this.uid = opts.sandboxUid ?? NOBODY;
    this.bwrap = opts.bwrapPath ?? '/usr/bin/bwrap';
    this.node = opts.nodePath ?? process.execPath;
    this.python = opts.pythonPath ?? '/usr/bin/python3';
    this.tmpBytes = opts.tmpBytes ?? 64 * 1024 * 1024;
    this.seccompFilter = opts.seccompFilter ?? DEFAULT_FILTER;
    const missing = [this.bwrap, this.node, this.python, RLIMITS[0]!].filter((p) => !fs.existsSync(p));
    if (missing.length > 0) {
      throw new Error(`process runner: missing ${missing.join(', ')} (install Debian packages bubblewrap, python3 and util-linux)`);
    }
    if (!fs.existsSync(this.seccompFilter)) {
      throw new Error(`process runner: the seccomp filter ${this.seccompFilter} is missing; run npm run build (needs cc and libseccomp-dev)`);
    }
  }

  start(spec: FunctionSpec, code: FunctionCode): SandboxProcess {
    const { config } = spec;
    if (config.runtime === 'python' && this.opts.zygote?.available) return this.opts.zygote.start(spec, code);
    const binds = [code, ...code.extra].flatMap((m) => ['--ro-bind', m.hostPath, m.mountPath]);
    return this.launch(binds, config.env, this.command(config.runtime, config.memoryMb, { spec, code }), config,
      config.runtime);
  }

  /**
   * A sandbox with no function in it yet: the host waits for a `load` frame carrying the code
   * (written to its private /tmp) and the env. Pre-started, it takes the sandbox's and the
   * runtime's start off a cold call. Its memory limit (and node's heap) is `memoryMb`.
   */
  startGeneric(runtime: Runtime, memoryMb: number): SandboxProcess {
    return this.launch([], {}, this.command(runtime, memoryMb), { memoryMb }, runtime);
  }

  private launch(binds: string[], fnEnv: Readonly<Record<string, string>>, command: string[], limits: SandboxLimits, runtime: Runtime): SandboxProcess {
    const direct = directChannel(runtime);
    const env = { ...fnEnv, ...direct.env };
    const args = [
      '--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
      '--ro-bind', '/usr', '/usr',
      '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib',
      ...(fs.existsSync('/usr/lib64') ? ['--symlink', 'usr/lib64', '/lib64'] : []),
      '--ro-bind', '/etc/ld.so.cache', '/etc/ld.so.cache',
      '--ro-bind-try', '/etc/ssl', '/etc/ssl',
      '--ro-bind-try', '/etc/localtime', '/etc/localtime',
      ...this.bindOutsideUsr(this.node),
      '--ro-bind', this.opts.runtimeDir, '/faas',
      ...binds,
      '--size', String(this.tmpBytes), '--perms', '1777', '--tmpfs', '/tmp',
      // bwrap's /dev is a tmpfs the sandbox could write to: read-only but for its own /dev/shm
      // (device nodes stay writable on a read-only mount).
      '--proc', '/proc', '--dev', '/dev', '--size', String(SHM_BYTES), '--tmpfs', '/dev/shm', '--remount-ro', '/dev',
      '--remount-ro', '/',
      '--chdir', '/tmp',
      '--seccomp', String(SECCOMP_FD),
      '--clearenv',
      ...Object.entries({ ...BASE_ENV, ...env }).flatMap(([k, v]) => ['--setenv', k, v]),
      ...command,
    ];
    // As root, bwrap itself is started as the sandbox user (or a slot's uid, see `slots`). As
    // anyone else we cannot change uid, but bwrap is then unprivileged already; --uid maps the
    // function to 65534 inside.
    const asRoot = this.asRoot;
    const cgroups = this.opts.cgroups;
    const slotUid = this.slots?.take();
    if (!asRoot || slotUid !== undefined) args.unshift('--uid', String(this.uid), '--gid', String(this.uid));
    const cg = cgroups?.create(instanceLimits(limits));
    const filter = fs.openSync(this.seccompFilter, 'r'); // one fd per sandbox: bwrap reads it to the end
    const launch = () => spawn(this.bwrap, args, {
      ...(asRoot ? { uid: slotUid ?? this.uid, gid: this.uid } : {}),
      env: {},
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', filter, ...direct.stdio],
    });
    let child;
    try {
      child = cg ? cgroups!.spawnInside(cg, launch) : launch();
    } finally {
      fs.closeSync(filter);
    }
    // Not bwrap itself: it would die of it and take the runtime host down without its turn.
    // The host exits; bwrap follows with its exit status.
    const terminate = (): void => {
      if (cg) cgroups!.terminateAll(cg, (pid) => !isBwrap(pid));
      else child.kill('SIGTERM');
    };
    if (slotUid !== undefined) child.once('exit', () => this.slots!.release(slotUid));
    // bwrap's init is pid 1 of the sandbox's PID namespace: when the outer bwrap dies, the
    // kernel kills everything in the namespace (and --die-with-parent covers the rest).
    return spawnedSandbox(child, 'bwrap', terminate, cgroups && cg ? { cgroups, cg } : undefined);
  }

  /** The runtime host's command line, behind the rlimits; no function means a spare awaiting `load`. */
  private command(runtime: Runtime, memoryMb: number, fn?: { spec: FunctionSpec; code: FunctionCode }): string[] {
    // Without cgroups (a pure cgroup2 host, say), python's memory_mb is its address space, with
    // room for the interpreter; node's is its heap flag (node needs far more address space than it uses).
    const addressSpace = !this.opts.cgroups && runtime === 'python' ? [`--as=${(memoryMb + PYTHON_AS_ROOM_MB) * 1024 * 1024}`] : [];
    // …and its pids limit is RLIMIT_NPROC on a uid of its own (see `slots`).
    const processes = this.slots ? [`--nproc=${PIDS_MAX}:${PIDS_MAX}`] : [];
    return [...RLIMITS.slice(0, -1), ...addressSpace, ...processes, '--', ...hostCommand(runtime, { node: this.node, python: this.python }, memoryMb, fn)];
  }

  /** A node binary outside /usr (nvm, /opt) must be mounted where it is. */
  private bindOutsideUsr(binary: string): string[] {
    return binary.startsWith('/usr/') ? [] : ['--ro-bind', path.dirname(binary), path.dirname(binary)];
  }
}

/** What a sandbox is limited to: a function's memory_mb and cpu, or a spare's memory. */
export interface SandboxLimits {
  readonly memoryMb: number;
  readonly cpu?: number | undefined;
}

export function instanceLimits(limits: SandboxLimits): InstanceLimits {
  return { memoryBytes: limits.memoryMb * 1024 * 1024, pidsMax: PIDS_MAX, cpu: limits.cpu };
}

/**
 * The SandboxProcess of a sandbox the worker spawned (bwrap, unshare): fd 3 is the channel,
 * killing it kills its outermost process and its cgroup, and its exit says whether the kernel
 * stopped it at a limit (read before the cgroup is removed).
 */
export function spawnedSandbox(child: ChildProcess, via: string, terminate: () => void, limits?: { cgroups: Cgroups; cg: InstanceCgroup }): SandboxProcess {
  const direct = (child.stdio as ReadonlyArray<unknown>)[DIRECT_FD] as Socket | null | undefined;
  const exited = exitOf(child, (code, signal) => {
    if (!limits) return { code, signal };
    const limit = limits.cgroups.limitHit(limits.cg);
    limits.cgroups.killAll(limits.cg);
    void limits.cgroups.remove(limits.cg).catch(() => {});
    return { code, signal, ...(limit ? { limit } : {}) };
  });
  return {
    pid: child.pid ?? -1,
    via,
    channel: child.stdio[3] as Duplex,
    ...(direct && { direct }),
    output: [child.stdout as Readable, child.stderr as Readable],
    terminate,
    kill: () => {
      child.kill('SIGKILL');
      if (limits) limits.cgroups.killAll(limits.cg);
    },
    exited,
    ...(limits && { usage: () => limits.cgroups.usage(limits.cg) }),
  };
}

/** Host uids for sandboxes without cgroups: high above any real user's or subuid range. */
const SLOT_UID_BASE = 1_900_000_000;
const SLOTS_PER_WORKER = 1024;

/** A host uid per live sandbox, reused once it exits. */
class SlotUids {
  private readonly free: number[] = [];
  private next = 0;

  constructor(private readonly base: number) {}

  take(): number {
    return this.free.pop() ?? this.base + (this.next++ % SLOTS_PER_WORKER);
  }

  release(uid: number): void {
    this.free.push(uid);
  }
}

function isBwrap(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'bwrap';
  } catch {
    return false;
  }
}
