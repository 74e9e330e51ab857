// Container mode: each instance is an OCI container run by runc (crun where the host's
// cgroups suit it), with the same runtime host as process mode. The bundle's root is an empty
// skeleton made read-only, with the host's /usr, the runtime hosts and the function's code bound
// in read-only (SANDBOX.md: ~80–120 ms to a first reply, then a warm container answers like a
// process sandbox). Inside: uid 65534, no capabilities, no-new-privileges, new pid, network
// (no interface but lo), ipc, uts, mount and cgroup namespaces, the seccomp rules of process
// mode (dist/seccomp/filter.oci.json, made from the same filter.c), memory and pids limits in
// a cgroup under the worker's own, rlimits, a private sized /tmp.
//
// A function with `image` (a root file system folder: an unpacked image, `docker export`, a
// debootstrap) runs in that instead, with its own node or python (IMAGE_INTERPRETERS); only the
// runtime hosts, the code and the channel are bound in. runc creates missing mount points in it.
//
// The frame channel is a Unix socket the worker listens on in a folder bound into the
// container at /run/faas: the runtime host connects to it (FAAS_CHANNEL), so a warm container
// serves invocations the way a process sandbox does over fd 3, and the same bundle works with
// engines that cannot pass file descriptors.
//
// Lifetime: `runc run` stays in the foreground as the container's parent; killing it would
// leave the container running, so kill() is `runc delete --force`. If the worker dies
// abruptly, the runtime host sees its channel close and exits, which ends the container's pid
// namespace; the next worker with the same id deletes what is left of the old one's containers.
//
// gVisor (`"isolation": "gvisor"`): the same bundle run by runsc instead of runc, so the function
// talks to gVisor's user-space kernel, not the host's. What it needs besides (its flags, its pids
// limit, its seccomp rules), measured with the Debian package, is in gvisor.ts. runsc removes the
// cgroups it makes as soon as the container exits (it has no --keep), so the container's cgroup is
// made here with its limits, and runsc joins one it finds as it is (gvisorCgroup). A cold start
// through the gateway took ~0.5 s for python and ~1 s for node on a loaded 2-core host (runc: ~0.2 and ~0.3 s); gVisor's own spares (pool.ts)
// bring the later cold starts of inline code down to ~15–25 ms, as runc's do.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findContainerEngine, findOciRuntime, findRunsc } from '../../src/host/container-engine.js';
import { IMAGE_INTERPRETERS, type FunctionSpec, type Isolation, type Runtime } from '../../src/protocol/messages.js';
import { processAlive, type Cgroups, type InstanceCgroup } from '../cgroups.js';
import { cpuQuota } from '../cgroup-files.js';
import { GVISOR_FLAGS, GVISOR_PIDS_MAX, gvisorSeccomp, type SeccompProfile } from './gvisor.js';
import type { SandboxLimits } from './process-runner.js';
import { listenForChannel } from '../channel-socket.js';
import { containerSandbox, run } from './container-sandbox.js';
import type { FunctionCode } from '../function-code.js';
import {
  BASE_ENV, FILE_SIZE_MAX, hostCommand, OPEN_FILES_MAX, PIDS_MAX, SHM_BYTES,
  type Interpreters, type Runner, type SandboxProcess,
} from './runner.js';

export interface ContainerRunnerOptions {
  /** Host folder holding node-host.mjs and python-host.py, readable by the sandbox user. */
  readonly runtimeDir: string;
  /** This worker's folder for bundles, channels and the runtime's state. */
  readonly stateDir: string;
  readonly workerId: string;
  /** Memory and pids limits: the OCI runtime applies them in a cgroup under the worker's. */
  readonly cgroups: Cgroups;
  readonly runtimePath?: string;
  /** gVisor's runsc, for functions with "isolation": "gvisor" (default: the first of findRunsc()). */
  readonly gvisorPath?: string;
  readonly nodePath?: string;
  readonly pythonPath?: string;
  readonly tmpBytes?: number;
  readonly seccompProfile?: string;
}

const DEFAULT_PROFILE = fileURLToPath(new URL('../../seccomp/filter.oci.json', import.meta.url));
const NOBODY = 65534;
/** Where the channel folder appears inside the container. */
const CHANNEL_DIR = '/run/faas';
const CHANNEL = `${CHANNEL_DIR}/channel.sock`;
/** What the OCI runtime spec (1.0) calls the default masked and read-only /proc paths. */
const MASKED = ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'];
/**
 * RLIMIT_NPROC for a container an engine runs. Podman 4.3 otherwise asks runc for a limit it
 * cannot set once the capabilities are gone ("error setting rlimit type 6"; 65536 fails here,
 * 4096 works). It counts every process of uid 65534 on the host; --pids-limit bounds the container.
 */
const ENGINE_NPROC = 4096;
const READ_ONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];



/** An OCI runtime as launch() uses it: the binary, its state folder, and its flags before every command (--root first). */
interface OciRuntime {
  readonly path: string;
  readonly root: string;
  readonly flags: readonly string[];
  readonly isolation: Isolation;
}

export class ContainerRunner implements Runner {
  readonly name = 'container';
  /**
   * This runner as the spares of gVisor's containers see it (pool.ts keeps them apart from runc's:
   * the runtime a spare runs in is fixed at its start); undefined where runsc is not installed.
   */
  readonly gvisor: Runner | undefined;
  /** runc (--root: this worker's containers' state, apart from anyone else's), and runsc beside it where installed. */
  private readonly runc: OciRuntime;
  private readonly runsc: OciRuntime | undefined;
  private readonly node: string;
  private readonly python: string;
  private readonly tmpBytes: number;
  private readonly seccomp: unknown;
  private readonly gvisorSeccomp: unknown;
  private readonly seccompProfile: string;
  /** Docker or Podman, for functions whose `image` is an image name. */
  private readonly engine = findContainerEngine();
  private readonly rootfs: string;
  private readonly prefix: string;
  private seq = 0;

  constructor(private readonly opts: ContainerRunnerOptions) {
    const runtime = opts.runtimePath ?? findOciRuntime();
    if (!runtime) throw new Error('container runner: no OCI runtime found (install the Debian package runc)');
    this.runc = ociRuntime(runtime, path.join(opts.stateDir, 'runc'), 'runc', []);
    const runsc = opts.gvisorPath ?? findRunsc();
    this.runsc = runsc === undefined ? undefined : ociRuntime(runsc, path.join(opts.stateDir, 'runsc'), 'gvisor', GVISOR_FLAGS);
    this.node = opts.nodePath ?? process.execPath;
    this.python = opts.pythonPath ?? '/usr/bin/python3';
    this.tmpBytes = opts.tmpBytes ?? 64 * 1024 * 1024;
    const profile = opts.seccompProfile ?? DEFAULT_PROFILE;
    if (!fs.existsSync(profile)) {
      throw new Error(`container runner: the seccomp profile ${profile} is missing; run npm run build (needs cc and libseccomp-dev)`);
    }
    this.seccomp = JSON.parse(fs.readFileSync(profile, 'utf8'));
    this.gvisorSeccomp = gvisorSeccomp(this.seccomp as SeccompProfile);
    this.seccompProfile = profile;
    this.rootfs = path.join(opts.stateDir, 'rootfs');
    this.prefix = `faas-${opts.workerId}-${process.pid}-`;
    for (const oci of [this.runc, this.runsc]) if (oci) fs.mkdirSync(oci.root, { recursive: true, mode: 0o700 });
    this.gvisor = this.runsc && {
      name: 'container (gvisor)',
      start: (spec, code) => this.start(spec, code),
      startGeneric: (runtime, memoryMb) => this.startGeneric(runtime, memoryMb, 'gvisor'),
    };
    this.removeStale();
    makeRootfs(this.rootfs);
  }

  start(spec: FunctionSpec, code: FunctionCode): SandboxProcess {
    const { config } = spec;
    const oci = this.ociRuntime(config.isolation ?? 'runc');
    if (config.image !== undefined && !config.image.startsWith('/')) {
      if (oci.isolation === 'gvisor') {
        throw new Error(`image ${JSON.stringify(config.image)} names an image, which Docker or Podman runs, not gVisor: "isolation": "gvisor" takes a root folder ("image": "/…") or none`);
      }
      return this.launchEngine(spec, code, config.image);
    }
    const root = config.image === undefined ? this.hostRoot() : imageRoot(config.image);
    return this.launch(oci, config, config.env, { ...root, mounts: [...root.mounts, ...[code, ...code.extra].map((m) => readOnly(m.hostPath, m.mountPath))] },
      hostCommand(config.runtime, root.interpreters, config.memoryMb, { spec, code }));
  }

  startGeneric(runtime: Runtime, memoryMb: number, isolation: Isolation = 'runc'): SandboxProcess {
    const oci = this.ociRuntime(isolation);
    const root = this.hostRoot();
    return this.launch(oci, { memoryMb }, {}, root, hostCommand(runtime, root.interpreters, memoryMb));
  }

  /** runc, or runsc for gVisor: a clear error where it is not installed (the call gets 503 FUNCTION_UNAVAILABLE). */
  private ociRuntime(isolation: Isolation): OciRuntime {
    if (isolation === 'runc') return this.runc;
    if (!this.runsc) throw new Error('"isolation": "gvisor" needs gVisor\'s runsc, which this host does not have: install the Debian package runsc');
    return this.runsc;
  }

  /** The default root: the empty skeleton with the host's /usr and a few /etc files bound in read-only. */
  private hostRoot(): Root {
    return {
      path: this.rootfs,
      interpreters: { node: this.node, python: this.python },
      mounts: [
        readOnly('/usr', '/usr'),
        readOnly('/etc/ld.so.cache', '/etc/ld.so.cache'),
        ...['/etc/ssl', '/etc/localtime'].filter((p) => fs.existsSync(p)).map((p) => readOnly(p, p)),
        ...(this.node.startsWith('/usr/') ? [] : [readOnly(path.dirname(this.node), path.dirname(this.node))]),
      ],
    };
  }

  private launch(oci: OciRuntime, limits: SandboxLimits, env: Readonly<Record<string, string>>, root: Root, args: string[]): SandboxProcess {
    const gvisor = oci.isolation === 'gvisor';
    const id = `${this.prefix}${++this.seq}`;
    const bundle = path.join(this.opts.stateDir, id);
    const channelDir = path.join(bundle, 'channel');
    const memoryBytes = limits.memoryMb * 1024 * 1024;
    const { cgroupsPath, cg } = gvisor ? this.gvisorCgroup(memoryBytes, limits.cpu) : this.opts.cgroups.forRuntime({ memoryBytes, cpu: limits.cpu });
    // Listening before the container starts, so its first connect finds the socket.
    const listener = listenForChannel(channelDir, NOBODY);
    const quota = limits.cpu === undefined ? undefined : cpuQuota(limits.cpu);
    const ociConfig = {
      ociVersion: '1.0.2',
      root: { path: root.path, readonly: true },
      hostname: 'faas',
      process: {
        terminal: false,
        user: { uid: NOBODY, gid: NOBODY },
        args,
        env: Object.entries({ ...BASE_ENV, ...env, FAAS_CHANNEL: CHANNEL }).map(([k, v]) => `${k}=${v}`),
        cwd: '/tmp',
        capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
        rlimits: [
          { type: 'RLIMIT_NOFILE', hard: OPEN_FILES_MAX, soft: OPEN_FILES_MAX },
          { type: 'RLIMIT_FSIZE', hard: FILE_SIZE_MAX, soft: FILE_SIZE_MAX },
        ],
        noNewPrivileges: true,
      },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
        { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${SHM_BYTES}`] },
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${this.tmpBytes}`] },
        readOnly(this.opts.runtimeDir, '/faas'),
        { destination: CHANNEL_DIR, type: 'bind', source: channelDir, options: ['rbind', 'nosuid', 'nodev', 'noexec'] },
        ...root.mounts,
      ],
      linux: {
        namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type })),
        cgroupsPath,
        resources: {
          devices: [{ allow: false, access: 'rwm' }],
          memory: { limit: memoryBytes, swap: memoryBytes },
          pids: { limit: gvisor ? GVISOR_PIDS_MAX : PIDS_MAX },
          ...(quota && { cpu: { quota: quota.quotaUs, period: quota.periodUs } }),
        },
        seccomp: gvisor ? this.gvisorSeccomp : this.seccomp,
        maskedPaths: MASKED,
        readonlyPaths: READ_ONLY,
      },
    };
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(ociConfig));

    // --keep: the container's cgroup outlives it until delete(), so an OOM kill can be read
    // (runsc has no --keep: gvisorCgroup made its cgroup, which outlives it the same way)
    const child = spawn(oci.path, [...oci.flags, 'run', ...(gvisor ? [] : ['--keep']), '--bundle', bundle, id], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return containerSandbox(child, path.basename(oci.path), listener, bundle, {
      remove: () => this.delete(oci, id, cg),
      terminate: () => run(oci.path, [...oci.flags, 'kill', '--all', id, 'TERM']),
      limitHit: () => this.opts.cgroups.limitHit(cg),
      usage: () => this.opts.cgroups.usage(cg),
    });
  }

  /**
   * The cgroup of a gVisor container, made here with its limits (as for a process sandbox, with
   * GVISOR_PIDS_MAX). runsc applies linux.resources as runc does, but removes the cgroups it made
   * as soon as the container exits, before its OOM count could be read; one that is already there
   * it joins as it is and leaves alone (measured). The path is in this worker's folder, as
   * forRuntime's is for runc (in every hierarchy, relative to the worker's own cgroup on v1).
   */
  private gvisorCgroup(memoryBytes: number, cpu: number | undefined): { cgroupsPath: string; cg: InstanceCgroup } {
    const cg = this.opts.cgroups.create({ memoryBytes, pidsMax: GVISOR_PIDS_MAX, cpu });
    return { cgroupsPath: this.opts.cgroups.runtimePath(cg), cg };
  }

  /**
   * A function whose `image` is an image name: the host's Docker or Podman runs the same host
   * with the same isolation and limits as a runc bundle (its own cgroups, in the engine's place).
   * A memory kill shows as exit code 137: the engine removes the container, and with it the count.
   */
  private launchEngine(spec: FunctionSpec, code: FunctionCode, image: string): SandboxProcess {
    const engine = this.engine;
    if (!engine) throw new Error(`image ${JSON.stringify(image)} names an image, but this host has no Docker daemon or Podman to run it`);
    const { config } = spec;
    const id = `${this.prefix}${++this.seq}`;
    const bundle = path.join(this.opts.stateDir, id);
    const channelDir = path.join(bundle, 'channel');
    const listener = listenForChannel(channelDir, NOBODY);
    const memory = `${config.memoryMb}m`;
    // The image's own interpreter, wherever its PATH has it.
    const env = { ...BASE_ENV, PATH: '/usr/local/bin:/usr/bin:/bin', ...config.env, FAAS_CHANNEL: CHANNEL };
    const args = [
      'run', '--rm', '--name', id, '--network', 'none', '--cap-drop', 'all', '--hostname', 'faas',
      '--security-opt', 'no-new-privileges', '--security-opt', `seccomp=${this.seccompProfile}`,
      '--user', `${NOBODY}:${NOBODY}`, '--read-only', '--workdir', '/tmp',
      '--tmpfs', `/tmp:size=${this.tmpBytes},mode=1777`, '--shm-size', String(SHM_BYTES),
      '--memory', memory, '--memory-swap', memory, '--pids-limit', String(PIDS_MAX),
      '--ulimit', `nofile=${OPEN_FILES_MAX}:${OPEN_FILES_MAX}`, '--ulimit', `fsize=${FILE_SIZE_MAX}:${FILE_SIZE_MAX}`,
      '--ulimit', `nproc=${ENGINE_NPROC}:${ENGINE_NPROC}`,
      '-v', `${this.opts.runtimeDir}:/faas:ro`, ...[code, ...code.extra].flatMap((m) => ['-v', `${m.hostPath}:${m.mountPath}:ro`]), '-v', `${channelDir}:${CHANNEL_DIR}`,
      ...(engine.name === 'podman' ? ['--unsetenv-all'] : []), // no TERM, no container=podman: only ours (and HOSTNAME)
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      image, ...hostCommand(config.runtime, { node: 'node', python: 'python3' }, config.memoryMb, { spec, code }),
    ];
    const child = spawn(engine.path, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    return containerSandbox(child, engine.name, listener, bundle, {
      remove: () => run(engine.path, ['rm', '--force', id]),
      terminate: () => run(engine.path, ['kill', '--signal', 'TERM', id]),
    });
  }

  /** Kills the container and everything in it, and removes its state and cgroups. */
  private async delete(oci: OciRuntime, id: string, cg: InstanceCgroup): Promise<void> {
    await run(oci.path, [...oci.flags, 'delete', '--force', id]);
    this.opts.cgroups.killAll(cg); // whatever runc could not reach (it should have)
    // gVisor's cgroup is ours (gvisorCgroup), runc's gone already: remove() also closes usage()'s files.
    // One still busy is left to the worker's exit or a later worker's removeStale.
    await this.opts.cgroups.remove(cg).catch(() => {});
  }

  /** Containers and bundles of an earlier worker with this id that died without cleaning up. */
  private removeStale(): void {
    const mine = new RegExp(`^faas-${escapeRegExp(this.opts.workerId)}-(\\d+)-\\d+$`);
    const stale = (id: string): boolean => {
      const m = mine.exec(id);
      return m !== null && !processAlive(Number(m[1]));
    };
    if (this.engine) {
      const names = spawnSync(this.engine.path, ['ps', '--all', '--format', '{{.Names}}', '--filter', `name=faas-${this.opts.workerId}-`], { encoding: 'utf8', timeout: 10_000 });
      for (const name of (names.stdout ?? '').split('\n').filter(stale)) spawnSync(this.engine.path, ['rm', '--force', name], { stdio: 'ignore', timeout: 10_000 });
    }
    for (const oci of [this.runc, this.runsc]) {
      if (!oci) continue;
      const listed = spawnSync(oci.path, [...oci.flags, 'list', '--quiet'], { encoding: 'utf8' });
      for (const id of (listed.stdout ?? '').split('\n').filter(stale)) {
        spawnSync(oci.path, [...oci.flags, 'delete', '--force', id], { stdio: 'ignore' });
      }
    }
    for (const id of fs.readdirSync(this.opts.stateDir).filter(stale)) {
      fs.rmSync(path.join(this.opts.stateDir, id), { recursive: true, force: true });
    }
  }
}

interface Root {
  readonly path: string;
  readonly interpreters: Interpreters;
  readonly mounts: readonly object[];
}

function ociRuntime(binary: string, root: string, isolation: Isolation, flags: readonly string[]): OciRuntime {
  return { path: binary, root, isolation, flags: ['--root', root, ...flags] };
}


/** A user's root file system: its own interpreters, nothing of the host's but what launch() binds. */
function imageRoot(image: string): Root {
  const find = (runtime: 'node' | 'python'): string => IMAGE_INTERPRETERS[runtime].find((p) => fs.existsSync(`${image}${p}`)) ?? IMAGE_INTERPRETERS[runtime][0]!;
  return { path: image, interpreters: { node: find('node'), python: find('python') }, mounts: [] };
}

function readOnly(source: string, destination: string): object {
  return { destination, type: 'bind', source, options: ['rbind', 'ro', 'nosuid', 'nodev'] };
}

/** An empty root with mount points and the /bin, /lib symlinks a Debian /usr expects; read-only at run time. */
function makeRootfs(dir: string): void {
  for (const sub of ['usr', 'etc', 'tmp', 'proc', 'dev', 'faas', 'fn', 'run/faas']) fs.mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777); // runc gives a tmpfs the mode of the folder it covers
  for (const [link, target] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']] as const) {
    if (!fs.existsSync(path.join('/', target))) continue;
    try {
      fs.symlinkSync(target, path.join(dir, link));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
