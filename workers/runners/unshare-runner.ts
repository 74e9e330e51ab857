// Process mode where bwrap is absent: the same sandbox as process-runner.ts, built from
// util-linux instead (SANDBOX.md: "unshare + setpriv … fallback where bwrap is absent").
//
//   setpriv --pdeathsig KILL            dies with the worker (bwrap's --die-with-parent)
//     unshare --mount --uts --ipc --net --pid --cgroup --fork --kill-child
//       /bin/sh -c MOUNT_SCRIPT        pid 1 of the new PID namespace, still root:
//         builds a root in a tmpfs, pivot_root into it, then
//         exec setpriv --reuid/--regid 65534 --clear-groups, no capabilities, no_new_privs
//           env -i BASE_ENV + the function's env
//             seccomp-exec filter.bpf --      the filter bwrap would install (seccomp/exec.c)
//               prlimit … -- node|python /faas/…-host …
//
// Root only: unshare needs CAP_SYS_ADMIN, and setpriv can only leave uid 0 if it starts there
// (without root, install bubblewrap: it needs no privileges). Every privileged step happens
// before setpriv; the runtime starts as uid 65534 with empty capability sets, under the filter.
// The root the function sees holds the same things as bwrap's: /usr, /etc/ld.so.cache,
// /etc/ssl, /etc/localtime and the function's code read-only, the runtime hosts at /faas, a
// private sized /tmp, its own /proc, and a /dev of null, zero, random, urandom, fd and shm. One more
// entry, /.seccomp (read-only), holds seccomp-exec and the filter.
//
// The bind mounts are one fstab handed to a single `mount -a` (~11 ms faster than one mount(8)
// per entry, measured here): the mount table is data built below, the script stays fixed.
// Kill: SIGKILL to the outer process ends unshare, --kill-child then kills the namespace's
// init, and the kernel kills everything else in the PID namespace with it; the instance's
// cgroup (cgroups.ts) is swept as well, as in process-runner.ts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionSpec, Runtime } from '../../src/protocol/messages.js';
import type { Cgroups } from '../cgroups.js';
import type { FunctionCode } from '../function-code.js';
import { instanceLimits, ProcessRunner, RLIMITS, spawnedSandbox, type ProcessRunnerOptions, type SandboxLimits } from './process-runner.js';
import { BASE_ENV, directChannel, hostCommand, type Interpreters, type Runner, type SandboxProcess } from './runner.js';

export interface UnshareRunnerOptions {
  /** Host folder holding node-host.mjs and python-host.py; mounted read-only at /faas. */
  readonly runtimeDir: string;
  readonly nodePath?: string;
  readonly pythonPath?: string;
  readonly tmpBytes?: number;
  /** Holds seccomp-exec and filter.bpf (scripts/build-seccomp.sh writes them at build time). */
  readonly seccompDir?: string;
  /**
   * An empty folder each sandbox mounts its root tmpfs on, inside its own mount namespace (so
   * every sandbox can share it). Default: `sandbox-root` beside runtimeDir.
   */
  readonly rootMountPoint?: string;
  /** Per-instance memory and pids limits; undefined where the host has none to give. */
  readonly cgroups?: Cgroups;
}

const NOBODY = '65534';
const DEFAULT_SECCOMP_DIR = fileURLToPath(new URL('../../seccomp/', import.meta.url));
/** Where seccomp-exec and the filter appear inside the sandbox. */
const SECCOMP_INSIDE = '/.seccomp';
const DEVICES = ['null', 'zero', 'random', 'urandom'];
/**
 * Every namespace bwrap --unshare-all makes but the user namespace (we are root already). No
 * mount leaks back to the host (private propagation); --mount-proc gives the script's own tools
 * this namespace's /proc; --kill-child: when unshare dies, so does the namespace.
 */
const NAMESPACES = ['--mount', '--uts', '--ipc', '--net', '--pid', '--cgroup', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private'];
/** setpriv's arguments as the sandbox's pid 1 drops root: no uid 0, no groups, no capabilities now or after exec. */
const DROP = ['--reuid', NOBODY, '--regid', NOBODY, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs'];
const TOOLS = ['/usr/bin/unshare', '/usr/bin/setpriv', '/usr/bin/mount', '/usr/bin/umount', '/usr/sbin/pivot_root',
  '/usr/bin/env', '/usr/bin/mkdir', '/usr/bin/ln', RLIMITS[0]!, '/bin/sh'];

/**
 * Runs as the PID namespace's init, as root, with the host's mounts still visible:
 *   $1 the mount point of the new root, $2 folders and $3 files to create in it as mount points
 *   (one per line, relative), $4 the fstab of the bind mounts (targets under $1), $5 the size
 *   of /tmp in bytes; the rest is the command setpriv runs.
 * Order matters: the root becomes read-only before pivot_root; the old root is parked on tmp/
 * and detached, and the private /tmp is mounted over that place (the fstab written there
 * before is hidden under it, never visible to the function).
 */
const MOUNT_SCRIPT = `set -eu
root=$1 dirs=$2 files=$3 fstab=$4 tmp_bytes=$5
shift 5
IFS='
'
set -f
/usr/bin/mount -n -t tmpfs -o mode=0755,size=1m,nosuid,nodev faas-root "$root"
cd "$root"
/usr/bin/mkdir -p $dirs
for f in $files; do : > "$f"; done
/usr/bin/ln -s usr/bin usr/lib usr/lib64 .
/usr/bin/ln -s /proc/self/fd dev/fd
printf '%s' "$fstab" > tmp/fstab
/usr/bin/mount -n -a -T "$root/tmp/fstab"
/usr/bin/mount -n -o remount,ro,nosuid,nodev "$root"
/usr/sbin/pivot_root . tmp
cd /
/usr/bin/umount -n -l /tmp
/usr/bin/mount -n -t tmpfs -o "size=$tmp_bytes,mode=1777,nosuid,nodev" faas-tmp /tmp
cd /tmp
exec /usr/bin/setpriv ${DROP.join(' ')} "$@"
`;

interface Mount {
  /** Host path (a file or a folder) to bind; for a new file system, its name. */
  readonly source: string;
  /** Path inside the sandbox. */
  readonly target: string;
  /** ro: a read-only bind; device: a device node's bind; proc, tmpfs: a new file system of that type. */
  readonly how: 'ro' | 'device' | 'proc' | 'tmpfs';
}

export class UnshareRunner implements Runner {
  readonly name = 'unshare';
  private readonly bin: Interpreters;
  private readonly tmpBytes: number;
  private readonly seccompDir: string;
  private readonly root: string;
  /** Mounts every sandbox gets; the function's code is added per launch. */
  private readonly baseMounts: readonly Mount[];

  constructor(private readonly opts: UnshareRunnerOptions) {
    const uid = process.getuid?.();
    if (uid !== 0) {
      throw new Error(`unshare runner: builds sandboxes with unshare + setpriv, which needs root (running as uid ${uid}); `
        + 'install the Debian package bubblewrap to run process sandboxes without root');
    }
    this.bin = { node: opts.nodePath ?? process.execPath, python: opts.pythonPath ?? '/usr/bin/python3' };
    this.tmpBytes = opts.tmpBytes ?? 64 * 1024 * 1024;
    this.seccompDir = opts.seccompDir ?? DEFAULT_SECCOMP_DIR;
    const missing = [...TOOLS, this.bin.node, this.bin.python].filter((p) => !fs.existsSync(p));
    if (missing.length > 0) {
      throw new Error(`unshare runner: missing ${missing.join(', ')} (install Debian packages util-linux, coreutils and python3)`);
    }
    const seccomp = ['seccomp-exec', 'filter.bpf'].map((f) => path.join(this.seccompDir, f)).filter((p) => !fs.existsSync(p));
    if (seccomp.length > 0) {
      throw new Error(`unshare runner: ${seccomp.join(' and ')} missing; run npm run build (needs cc and libseccomp-dev)`);
    }
    this.root = opts.rootMountPoint ?? path.join(path.dirname(opts.runtimeDir), 'sandbox-root');
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const optional = (p: string): Mount[] => (fs.existsSync(p) ? [{ source: p, target: p, how: 'ro' }] : []);
    this.baseMounts = [
      { source: '/usr', target: '/usr', how: 'ro' },
      { source: '/etc/ld.so.cache', target: '/etc/ld.so.cache', how: 'ro' },
      ...optional('/etc/ssl'),
      ...optional('/etc/localtime'),
      // A node binary outside /usr (nvm, /opt) must be mounted where it is.
      ...(this.bin.node.startsWith('/usr/') ? [] : [{ source: path.dirname(this.bin.node), target: path.dirname(this.bin.node), how: 'ro' as const }]),
      { source: opts.runtimeDir, target: '/faas', how: 'ro' },
      { source: this.seccompDir, target: SECCOMP_INSIDE, how: 'ro' },
      ...DEVICES.map((d) => ({ source: `/dev/${d}`, target: `/dev/${d}`, how: 'device' as const })),
      // POSIX semaphores and shared memory (python's multiprocessing) live in /dev/shm, which
      // bwrap --dev makes writable: a private tmpfs of the /tmp size here.
      { source: 'faas-shm', target: '/dev/shm', how: 'tmpfs' },
      { source: 'proc', target: '/proc', how: 'proc' },
    ];
  }

  start(spec: FunctionSpec, code: FunctionCode): SandboxProcess {
    const { config } = spec;
    const mounts = [...this.baseMounts, ...[code, ...code.extra].map((m) => ({ source: m.hostPath, target: m.mountPath, how: 'ro' as const }))];
    return this.launch(mounts, config.env, hostCommand(config.runtime, this.bin, config.memoryMb, { spec, code }), config, config.runtime);
  }

  /** A spare: no function mounted yet; it gets code and env in a `load` frame (see ProcessRunner.startGeneric). */
  startGeneric(runtime: Runtime, memoryMb: number): SandboxProcess {
    return this.launch(this.baseMounts, {}, hostCommand(runtime, this.bin, memoryMb), { memoryMb }, runtime);
  }

  private launch(mounts: readonly Mount[], fnEnv: Readonly<Record<string, string>>, command: string[], limits: SandboxLimits, runtime: Runtime): SandboxProcess {
    const direct = directChannel(runtime);
    const env = { ...fnEnv, ...direct.env };
    const { dirs, files, fstab } = this.mountTable(mounts);
    // `env -i` runs after setpriv, so the function's env (LD_PRELOAD, say) never reaches a
    // process that still has privileges.
    const environment = Object.entries({ ...BASE_ENV, ...env }).map(([k, v]) => `${k}=${v}`);
    const args = [
      '--pdeathsig', 'KILL', '/usr/bin/unshare', ...NAMESPACES,
      '/bin/sh', '-c', MOUNT_SCRIPT, 'faas-sandbox', this.root, dirs.join('\n'), files.join('\n'), fstab, String(this.tmpBytes),
      '/usr/bin/env', '-i', '--', ...environment,
      `${SECCOMP_INSIDE}/seccomp-exec`, `${SECCOMP_INSIDE}/filter.bpf`, '--',
      ...RLIMITS, ...command,
    ];
    const cgroups = this.opts.cgroups;
    const cg = cgroups?.create(instanceLimits(limits));
    const launch = () => spawn('/usr/bin/setpriv', args, { env: {}, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'ignore', ...direct.stdio] });
    const child = cg ? cgroups!.spawnInside(cg, launch) : launch();
    // The runtime host is the namespace's init: it handles SIGTERM and exits, and the kernel
    // ends the namespace with it. Not unshare: it would die of it and SIGKILL the host.
    const terminate = (): void => {
      if (child.pid !== undefined) signalInit(child.pid, 'SIGTERM');
    };
    // SIGKILL to unshare: --kill-child takes the PID namespace with it.
    return spawnedSandbox(child, 'unshare', terminate, cgroups && cg ? { cgroups, cg } : undefined);
  }

  /** The mount points to create under the new root and the fstab that mounts onto them. */
  private mountTable(mounts: readonly Mount[]): { dirs: string[]; files: string[]; fstab: string } {
    const dirs = new Set(['usr', 'etc', 'dev', 'tmp', 'proc']);
    const files: string[] = [];
    let fstab = '';
    for (const m of mounts) {
      for (const p of [m.source, m.target]) {
        if (/[\n\0]/.test(p)) throw new Error(`unshare runner: cannot mount ${JSON.stringify(p)}: paths must not contain a newline`);
      }
      const rel = path.posix.normalize(m.target).replace(/^\/+/, '');
      if (m.how === 'proc' || m.how === 'tmpfs') {
        const options = m.how === 'proc' ? 'nosuid,nodev,noexec' : `size=${this.tmpBytes},mode=1777,nosuid,nodev`;
        dirs.add(rel);
        fstab += `${m.source} ${fstabField(path.join(this.root, rel))} ${m.how} ${options} 0 0\n`;
        continue;
      }
      if (fs.statSync(m.source).isDirectory()) dirs.add(rel);
      else {
        dirs.add(path.posix.dirname(rel));
        files.push(rel);
      }
      const options = m.how === 'ro' ? 'bind,ro,nosuid,nodev' : 'bind';
      fstab += `${fstabField(m.source)} ${fstabField(path.join(this.root, rel))} none ${options} 0 0\n`;
    }
    return { dirs: [...dirs], files, fstab };
  }
}

/** Signals the PID namespace's init: unshare's only child. */
function signalInit(unsharePid: number, signal: NodeJS.Signals): void {
  for (const pid of childrenOf(unsharePid)) {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone already */
    }
  }
}

/**
 * A process's children: /proc/PID/task/PID/children where the kernel has it
 * (CONFIG_PROC_CHILDREN), else the processes whose /proc/N/stat names it as parent.
 */
function childrenOf(parent: number): number[] {
  try {
    return fs.readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    /* no such file on this kernel, or the process is gone: scan */
  }
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) found.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return found;
}

/** fstab(5) separates fields by blanks: they, and the backslash, are written as octal escapes. */
function fstabField(p: string): string {
  return p.replace(/[\\ \t]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export type ProcessSandbox = 'bwrap' | 'unshare';

export interface ProcessRunnerChoice {
  readonly runner: Runner;
  /** A line for the worker's log when the choice is not the recommended bwrap; undefined otherwise. */
  readonly notice?: string;
}

/**
 * Process mode's runner: bubblewrap where /usr/bin/bwrap exists (or opts.bwrapPath), else
 * unshare + setpriv; `choice` (the worker's --sandbox, FAAS_SANDBOX) may force one.
 */
export function createProcessRunner(opts: ProcessRunnerOptions & UnshareRunnerOptions, choice: 'auto' | ProcessSandbox): ProcessRunnerChoice {
  const bwrap = opts.bwrapPath ?? '/usr/bin/bwrap';
  const sandbox: ProcessSandbox = choice === 'auto' ? (fs.existsSync(bwrap) ? 'bwrap' : 'unshare') : choice;
  if (sandbox === 'bwrap') return { runner: new ProcessRunner(opts) };
  const runner = new UnshareRunner(opts);
  const why = choice === 'unshare' ? '--sandbox unshare (FAAS_SANDBOX)' : `bwrap is absent (${bwrap})`;
  return {
    runner,
    notice: `${why}: process sandboxes use unshare + setpriv (util-linux; same namespaces, uid 65534, no capabilities, `
      + 'seccomp filter and read-only root as bwrap; ~10 ms more per sandbox start); install the Debian package bubblewrap for the recommended sandbox',
  };
}
