// cgroup v2 (one hierarchy at /sys/fs/cgroup): under the cgroup C the gateway was started in,
//
//   C/supervisor                the gateway's and the workers' own processes
//   C/faas-<worker>-<pid>/i<n>  one per instance: memory.max (+ memory.swap.max 0,
//                               memory.oom.group 1), pids.max, cpu.max
//
// The kernel allows controllers for C's children only once C holds no process itself (the
// "no internal processes" rule), so the first worker moves every process of C into
// C/supervisor and enables +memory +pids (+cpu) in C's cgroup.subtree_control: the way Docker's
// dind and kind's entrypoints prepare a delegated cgroup. Nothing above C is written by us.
// (runc, asked for a container's cgroup under C, enables controllers along the path from the
// root itself, as its cgroupfs driver always does; under systemd with Delegate=yes those are
// already on.) OOM kills are read from memory.events, a whole instance is killed with
// cgroup.kill, usage read from cpu.stat and memory.current / memory.peak.
import fs from 'node:fs';
import path from 'node:path';
import { CGROUP_MOUNT, SUPERVISOR_LEAF } from '../src/host/host-limits.js';
import type { CgroupUsage } from './runners/runner.js';
import type { Cgroups, InstanceCgroup, InstanceLimits } from './cgroups.js';
import {
  cpuQuota, killPids, memoryLimitMessage, readNumber, readPids, removeStale, removeTree, rmdirRetrying, tryWrite, UsageFiles,
} from './cgroup-files.js';

export class CgroupsV2 implements Cgroups {
  readonly kind = 'v2';
  private seq = 0;
  /** usage()'s files, kept open per instance until remove(). */
  private readonly usageFiles = new Map<string, UsageFiles>();

  private constructor(
    /** The cgroup this worker runs in (C/supervisor), to move back to after a spawn. */
    private readonly own: string,
    /** C/faas-<worker>-<pid>. */
    private readonly worker: string,
    readonly cpuQuotas: boolean,
  ) {}

  /** Prepares `base` (C) if no worker has yet, and makes this worker's folder. Throws when it cannot. */
  static open(base: string, name: string, cpu: boolean): CgroupsV2 {
    const controllers = cpu ? ['memory', 'pids', 'cpu'] : ['memory', 'pids'];
    delegate(base, controllers);
    removeStale(base, killCgroup);
    const worker = path.join(base, name);
    fs.mkdirSync(worker, { recursive: true });
    fs.writeFileSync(path.join(worker, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' '));
    return new CgroupsV2(ownCgroup(), worker, cpu);
  }

  create(limits: InstanceLimits): InstanceCgroup {
    const dir = path.join(this.worker, `i${++this.seq}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pidsMax));
    tryWrite(path.join(dir, 'memory.swap.max'), '0'); // absent where swap accounting is off: then there is no swap to limit
    tryWrite(path.join(dir, 'memory.oom.group'), '1'); // an OOM kill takes the whole instance, not one of its processes
    return this.resize(folder(dir, limits.memoryBytes), limits);
  }

  resize(cg: InstanceCgroup, limits: Omit<InstanceLimits, 'pidsMax'>): InstanceCgroup {
    fs.writeFileSync(path.join(cg.memory, 'memory.max'), String(limits.memoryBytes));
    if (this.cpuQuotas) {
      const quota = limits.cpu === undefined ? undefined : cpuQuota(limits.cpu);
      fs.writeFileSync(path.join(cg.memory, 'cpu.max'), quota ? `${quota.quotaUs} ${quota.periodUs}` : 'max');
    }
    return { ...cg, memoryBytes: limits.memoryBytes };
  }

  forRuntime(limits: Omit<InstanceLimits, 'pidsMax'>): { cgroupsPath: string; cg: InstanceCgroup } {
    // Absolute (from the hierarchy's root): runc's relative paths are relative to the parent of
    // its own cgroup, which is C here too, but an absolute one says so without that rule.
    const cg = folder(path.join(this.worker, `c${++this.seq}`), limits.memoryBytes);
    return { cgroupsPath: this.runtimePath(cg), cg };
  }

  runtimePath(cg: InstanceCgroup): string {
    return cg.memory.slice(CGROUP_MOUNT.length);
  }

  spawnInside<T>(cg: InstanceCgroup, spawn: () => T): T {
    fs.writeFileSync(path.join(cg.memory, 'cgroup.procs'), String(process.pid));
    try {
      return spawn();
    } finally {
      fs.writeFileSync(path.join(this.own, 'cgroup.procs'), String(process.pid));
    }
  }

  killAll(cg: InstanceCgroup): void {
    killCgroup(cg.memory);
  }

  terminateAll(cg: InstanceCgroup, which: (pid: number) => boolean = () => true): void {
    killPids(readPids(cg.memory).filter(which), 'SIGTERM');
  }

  limitHit(cg: InstanceCgroup): string | undefined {
    const events = path.join(cg.memory, 'memory.events');
    const kills = (readNumber(events, 'oom_kill') ?? 0) + (readNumber(events, 'oom_group_kill') ?? 0);
    return kills > 0 ? memoryLimitMessage(cg.memoryBytes) : undefined;
  }

  usage(cg: InstanceCgroup): CgroupUsage | undefined {
    let files = this.usageFiles.get(cg.memory);
    if (!files) {
      const at = (file: string): string => path.join(cg.memory, file);
      files = new UsageFiles(at('cpu.stat'), 'usage_usec', 1, at('memory.current'), at('memory.peak')); // memory.peak: kernel ≥ 5.19
      this.usageFiles.set(cg.memory, files);
    }
    return files.read();
  }

  async remove(cg: InstanceCgroup): Promise<void> {
    this.usageFiles.get(cg.memory)?.close();
    this.usageFiles.delete(cg.memory);
    await rmdirRetrying(cg.memory);
  }

  async close(): Promise<void> {
    killCgroup(this.worker); // what is left (a zygote's cell, a container mid-start) dies at once, all of it
    await removeTree(this.worker);
  }
}

/** One v2 folder serves every role. */
function folder(dir: string, memoryBytes: number): InstanceCgroup {
  return { dirs: [dir], memory: dir, pids: dir, cpu: dir, cpuacct: dir, memoryBytes };
}

/**
 * Makes `base` able to hold limited children: its processes into base/supervisor, then the
 * controllers on in its subtree_control. Idempotent, and safe when several workers of one gateway
 * do it at once (moving a process twice is a no-op; the loop ends when base is empty). The root
 * cgroup is exempt from the rule: there only the controllers are enabled.
 */
function delegate(base: string, controllers: readonly string[]): void {
  const subtree = path.join(base, 'cgroup.subtree_control');
  const enabled = fs.readFileSync(subtree, 'utf8').trim().split(/\s+/);
  if (controllers.every((c) => enabled.includes(c))) return;
  if (base !== CGROUP_MOUNT) {
    const leaf = path.join(base, SUPERVISOR_LEAF);
    fs.mkdirSync(leaf, { recursive: true });
    for (let round = 0; round < 100; round++) {
      const pids = readPids(base);
      if (pids.length === 0) break;
      for (const pid of pids) tryWrite(path.join(leaf, 'cgroup.procs'), String(pid)); // ESRCH: it exited meanwhile
    }
  }
  fs.writeFileSync(subtree, controllers.map((c) => `+${c}`).join(' '));
}

/** The cgroup this process is in now. */
function ownCgroup(): string {
  const line = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  return path.join(CGROUP_MOUNT, line?.slice(3) ?? '/');
}

/** Kills every process in a cgroup and its children: cgroup.kill (kernel ≥ 5.14), else one by one. */
function killCgroup(dir: string): void {
  if (tryWrite(path.join(dir, 'cgroup.kill'), '1')) return;
  killPids(readPids(dir));
}
