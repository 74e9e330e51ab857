// What this host's cgroups let a worker enforce on its sandboxes, read from /proc/self/cgroup,
// /proc/mounts and the cgroup files (never written here). The gateway reads it to say, at start,
// on /readyz and in /metrics, which guarantee is missing, and to refuse a row that asks for a
// limit the host cannot enforce (--allow-unenforced-limits serves it anyway); the worker
// (workers/cgroups.ts) applies the limits themselves.
//
// The kinds of host:
//   v1      every controller on its own cgroup v1 hierarchy (old distributions)
//   hybrid  cgroup v1 controllers, cgroup2 at /sys/fs/cgroup/unified without controllers
//           (Debian 11-, Ubuntu 20.04 under systemd's hybrid mode; our CI machines)
//   v2      one cgroup2 hierarchy at /sys/fs/cgroup (Debian 12, Ubuntu 22.04+, Fedora, RHEL 9)
//
// On v2 the rule "no processes in a cgroup that has controllers enabled for its children"
// means a gateway started in cgroup C can give its sandboxes limits only after moving every
// process of C into a leaf, C/supervisor, and enabling the controllers in C's
// cgroup.subtree_control (the worker does it: workers/cgroups-v2.ts; Docker's dind and kind's
// entrypoints do the same). That needs the controllers delegated to C (systemd: Delegate=yes)
// and C writable (root, or a delegated user unit).
import fs from 'node:fs';
import path from 'node:path';

export const CGROUP_MOUNT = '/sys/fs/cgroup';
/** The leaf a v2 gateway's and workers' own processes move into (see the header). */
export const SUPERVISOR_LEAF = 'supervisor';

export type HostKind = 'v1' | 'hybrid' | 'v2' | 'none';
/** The guarantees that depend on the host's cgroups. */
export const LIMITS = ['memory', 'pids', 'cpu'] as const;
export type Limit = (typeof LIMITS)[number];

export interface HostLimits {
  readonly kind: HostKind;
  /** The cgroup instances are made under: on v2 the delegated one (C above), on v1 the memory hierarchy's. */
  readonly base: string | undefined;
  /** Per limit: undefined when it is enforced, else why not (a sentence an operator can act on). */
  readonly missing: Readonly<Record<Limit, string | undefined>>;
}

/** The files this reads, injectable for tests (captured from real hosts in test/fixtures). */
export interface HostFiles {
  read(file: string): string | undefined;
  writable(file: string): boolean;
}

export const realFiles: HostFiles = {
  read: (file) => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
  writable: (file) => {
    try {
      fs.accessSync(file, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
};

const FIX = 'run the gateway as root under systemd with Delegate=yes (examples/faas-gateway.service), README "What the host needs"';

export function detectHostLimits(files: HostFiles = realFiles): HostLimits {
  const mounts = (files.read('/proc/mounts') ?? '').split('\n').map((l) => l.split(' ')).filter((f) => f.length >= 3);
  const selfLines = (files.read('/proc/self/cgroup') ?? '').split('\n').filter(Boolean);
  const pureV2 = mounts.some(([, dir, type]) => type === 'cgroup2' && dir === CGROUP_MOUNT);
  if (pureV2) return detectV2(selfLines, files);
  const v1 = mounts.some(([, , type]) => type === 'cgroup');
  if (v1) return detectV1(selfLines, files, mounts.some(([, , type]) => type === 'cgroup2') ? 'hybrid' : 'v1');
  const none = 'this host has no cgroup file system mounted at /sys/fs/cgroup';
  return { kind: 'none', base: undefined, missing: { memory: none, pids: none, cpu: none } };
}

function detectV2(selfLines: readonly string[], files: HostFiles): HostLimits {
  const own = selfLines.find((l) => l.startsWith('0::'))?.slice(3) ?? '/';
  const base = delegatedBase(path.join(CGROUP_MOUNT, own), files);
  const available = (files.read(path.join(base, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
  const writable = files.writable(path.join(base, 'cgroup.subtree_control')) && files.writable(path.join(base, 'cgroup.procs'));
  const cg = base.slice(CGROUP_MOUNT.length) || '/';
  const missing = {} as Record<Limit, string | undefined>;
  for (const limit of LIMITS) {
    if (!available.includes(limit)) missing[limit] = `the ${limit} controller is not delegated to cgroup ${cg} (its cgroup.controllers: "${available.join(' ')}"): ${FIX}`;
    else if (!writable) missing[limit] = `cgroup ${cg} is not writable by uid ${process.getuid?.() ?? '?'}: ${FIX}`;
  }
  return { kind: 'v2', base, missing };
}

/**
 * C for a process in C/supervisor whose parent already has controllers enabled for its children
 * (a worker started by a gateway that, or whose sibling, delegated C already); else its own cgroup.
 */
export function delegatedBase(own: string, files: HostFiles = realFiles): string {
  if (path.basename(own) !== SUPERVISOR_LEAF) return own;
  const parent = path.dirname(own);
  const enabled = (files.read(path.join(parent, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/);
  return enabled.includes('memory') || enabled.includes('pids') ? parent : own;
}

/** v1 and hybrid: memory, pids and cpu each on a hierarchy of its own (cpu may share with cpuacct). */
function detectV1(selfLines: readonly string[], files: HostFiles, kind: 'v1' | 'hybrid'): HostLimits {
  const missing = {} as Record<Limit, string | undefined>;
  let base: string | undefined;
  for (const limit of LIMITS) {
    const line = selfLines.find((l) => l.split(':')[1]?.split(',').includes(limit));
    if (!line) {
      missing[limit] = `no cgroup v1 ${limit} hierarchy is mounted`;
      continue;
    }
    const m = /^\d+:([^:]*):(.*)$/.exec(line)!;
    const dir = path.join(CGROUP_MOUNT, m[1]!, m[2]!); // cpu,cpuacct: Debian mounts the pair under that name
    if (!files.writable(dir)) missing[limit] = `cgroup ${dir} is not writable by uid ${process.getuid?.() ?? '?'}: run the gateway as root`;
    if (limit === 'memory') base = dir;
  }
  return { kind, base, missing };
}

/** One line per missing guarantee, for the start log and /readyz. */
export function limitWarnings(host: HostLimits): string[] {
  return LIMITS.flatMap((limit) => {
    const why = host.missing[limit];
    return why === undefined ? [] : [`${LIMIT_MEANS[limit]} is not enforced: ${why}`];
  });
}

const LIMIT_MEANS: Readonly<Record<Limit, string>> = {
  memory: 'memory_mb (a memory limit on the whole sandbox)',
  pids: 'the process limit (64 processes and threads per instance)',
  cpu: 'cpu (a CPU quota per instance)',
};

/** The config field a limit comes from, for row errors. */
const LIMIT_FIELD: Readonly<Record<Limit, string>> = { memory: 'memory_mb', pids: 'mode', cpu: 'cpu' };

/**
 * Why a function cannot be given what its config asks for on this host, or undefined. Every
 * sandboxed function asks for memory_mb and the process limit (both have defaults, and README
 * promises them); `cpu` is asked for by setting it. A WebAssembly thread is held to memory_mb by
 * its worker, not by a cgroup. Fail closed: the gateway refuses such a row unless started with
 * --allow-unenforced-limits.
 */
export function unenforcedLimit(config: { readonly cpu?: number; readonly mode: string }, host: HostLimits): string | undefined {
  if (config.mode === 'thread') return undefined;
  const asks: Limit[] = config.cpu === undefined ? ['memory', 'pids'] : ['memory', 'pids', 'cpu'];
  for (const limit of asks) {
    const why = host.missing[limit];
    if (why !== undefined) {
      return `v.${LIMIT_FIELD[limit]}: ${LIMIT_MEANS[limit]} cannot be enforced on this host (${why}); start the gateway with --allow-unenforced-limits to serve it without`;
    }
  }
  return undefined;
}
