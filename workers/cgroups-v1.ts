// cgroups v1 (v1 and hybrid hosts): memory and pids hierarchies (required), cpu and cpuacct
// (used where mounted; Debian mounts them as the pair cpu,cpuacct):
//
//   /sys/fs/cgroup/<hierarchy><own path>/faas-<worker>-<pid>/i<n>
//
// memory.limit_in_bytes (+ memsw, no swapping past it), pids.max, cpu.cfs_quota_us; an OOM kill
// is read from memory.oom_control's oom_kill; usage from cpuacct.usage (ns) and
// memory.max_usage_in_bytes.
import fs from 'node:fs';
import path from 'node:path';
import { CGROUP_MOUNT } from '../src/host/host-limits.js';
import type { CgroupUsage } from './runners/runner.js';
import type { Cgroups, InstanceCgroup, InstanceLimits } from './cgroups.js';
import {
  cpuQuota, killPids, memoryLimitMessage, readNumber, readPids, removeStale, removeTree, rmdirRetrying, tryWrite, UsageFiles,
} from './cgroup-files.js';

const ROLES = ['memory', 'pids', 'cpu', 'cpuacct'] as const;
type Role = (typeof ROLES)[number];

/** One v1 hierarchy the worker uses: the roles it serves, the worker's cgroup in it, and this worker's folder. */
interface Hierarchy {
  readonly roles: readonly Role[];
  readonly own: string;
  readonly worker: string;
}

export class CgroupsV1 implements Cgroups {
  readonly kind = 'v1';
  readonly cpuQuotas: boolean;
  private seq = 0;
  /** usage()'s files, kept open per instance (by its memory folder) until remove(). */
  private readonly usageFiles = new Map<string, UsageFiles>();

  private constructor(
    private readonly hierarchies: readonly Hierarchy[],
    /** This worker's folder in every other hierarchy, where an OCI runtime makes its containers' cgroups. */
    private readonly otherDirs: readonly string[],
  ) {
    this.cpuQuotas = hierarchies.some((h) => h.roles.includes('cpu'));
  }

  /** Throws when a folder cannot be made (the caller says why limits are off). */
  static open(name: string, procSelfCgroup = '/proc/self/cgroup'): CgroupsV1 {
    const lines = fs.readFileSync(procSelfCgroup, 'utf8').split('\n');
    const hierarchies: Hierarchy[] = [];
    const others: string[] = [];
    for (const line of lines) {
      const m = /^\d+:([^:]*):(.*)$/.exec(line);
      if (!m) continue;
      const controllers = m[1]!.split(',');
      const roles = ROLES.filter((r) => controllers.includes(r));
      const dir = path.join(CGROUP_MOUNT, m[1] === '' ? 'unified' : m[1]!.replace(/^name=/, ''), m[2]!);
      if (roles.length === 0) {
        if (fs.existsSync(dir)) others.push(dir);
        continue;
      }
      removeStale(dir, (d) => killPids(readPids(d)));
      const worker = path.join(dir, name);
      fs.mkdirSync(worker, { recursive: true });
      hierarchies.push({ roles, own: dir, worker });
    }
    for (const dir of others) removeStale(dir, () => {});
    return new CgroupsV1(hierarchies, others.map((dir) => path.join(dir, name)));
  }

  create(limits: InstanceLimits): InstanceCgroup {
    const cg = this.folders(`i${++this.seq}`, limits.memoryBytes);
    for (const dir of cg.dirs) fs.mkdirSync(dir);
    fs.writeFileSync(path.join(cg.pids, 'pids.max'), String(limits.pidsMax));
    return this.resize(cg, limits);
  }

  resize(cg: InstanceCgroup, limits: Omit<InstanceLimits, 'pidsMax'>): InstanceCgroup {
    // memsw first when growing, memory first when shrinking: memsw may never be below memory.
    const files = ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes'];
    const current = readNumber(path.join(cg.memory, 'memory.limit_in_bytes'));
    const growing = current === undefined || limits.memoryBytes >= current;
    for (const file of growing ? files.reverse() : files) {
      if (file === 'memory.limit_in_bytes') fs.writeFileSync(path.join(cg.memory, file), String(limits.memoryBytes));
      else tryWrite(path.join(cg.memory, file), String(limits.memoryBytes)); // where swap accounting exists
    }
    if (cg.cpu !== undefined) {
      const quota = limits.cpu === undefined ? undefined : cpuQuota(limits.cpu);
      if (quota) fs.writeFileSync(path.join(cg.cpu, 'cpu.cfs_period_us'), String(quota.periodUs));
      fs.writeFileSync(path.join(cg.cpu, 'cpu.cfs_quota_us'), quota ? String(quota.quotaUs) : '-1');
    }
    return { ...cg, memoryBytes: limits.memoryBytes };
  }

  forRuntime(limits: Omit<InstanceLimits, 'pidsMax'>): { cgroupsPath: string; cg: InstanceCgroup } {
    const cg = this.folders(`c${++this.seq}`, limits.memoryBytes);
    return { cgroupsPath: this.runtimePath(cg), cg };
  }

  runtimePath(cg: InstanceCgroup): string {
    // Relative: runc and runsc put it under their own cgroups, which are the worker's.
    const memory = this.hierarchies.find((h) => h.roles.includes('memory'))!;
    return path.relative(memory.own, cg.memory);
  }

  spawnInside<T>(cg: InstanceCgroup, spawn: () => T): T {
    for (const dir of cg.dirs) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(process.pid));
    try {
      return spawn();
    } finally {
      for (const h of this.hierarchies) fs.writeFileSync(path.join(h.own, 'cgroup.procs'), String(process.pid));
    }
  }

  killAll(cg: InstanceCgroup): void {
    killPids(readPids(cg.pids));
  }

  terminateAll(cg: InstanceCgroup, which: (pid: number) => boolean = () => true): void {
    killPids(readPids(cg.pids).filter(which), 'SIGTERM');
  }

  limitHit(cg: InstanceCgroup): string | undefined {
    // oom_kill counts the cgroup's OOM kills (kernel ≥ 4.13); failcnt, where that is missing,
    // counts allocations that hit the limit (seen 0 here even when the OOM killer ran).
    const oomKills = readNumber(path.join(cg.memory, 'memory.oom_control'), 'oom_kill');
    const hit = oomKills !== undefined ? oomKills > 0 : (readNumber(path.join(cg.memory, 'memory.failcnt')) ?? 0) > 0;
    return hit ? memoryLimitMessage(cg.memoryBytes) : undefined;
  }

  usage(cg: InstanceCgroup): CgroupUsage | undefined {
    if (cg.cpuacct === undefined) return undefined;
    let files = this.usageFiles.get(cg.memory);
    if (!files) {
      files = new UsageFiles(path.join(cg.cpuacct, 'cpuacct.usage'), undefined, 1000, // ns
        path.join(cg.memory, 'memory.usage_in_bytes'), path.join(cg.memory, 'memory.max_usage_in_bytes'));
      this.usageFiles.set(cg.memory, files);
    }
    return files.read();
  }

  async remove(cg: InstanceCgroup): Promise<void> {
    this.usageFiles.get(cg.memory)?.close();
    this.usageFiles.delete(cg.memory);
    for (const dir of cg.dirs) await rmdirRetrying(dir);
  }

  async close(): Promise<void> {
    // What is left (a zygote's cell, a container mid-start) dies first, all of it, then the folders go.
    const pids = this.hierarchies.find((h) => h.roles.includes('pids'))!.worker;
    const instances = fs.existsSync(pids) ? fs.readdirSync(pids, { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
    for (const e of instances) killPids(readPids(path.join(pids, e.name)));
    for (const dir of [...this.hierarchies.map((h) => h.worker), ...this.otherDirs]) await removeTree(dir, (d) => killPids(readPids(d)));
  }

  /** The instance's folder in each hierarchy, by role. */
  private folders(name: string, memoryBytes: number): InstanceCgroup {
    const at = (role: Role): string | undefined => {
      const h = this.hierarchies.find((x) => x.roles.includes(role));
      return h && path.join(h.worker, name);
    };
    return {
      dirs: this.hierarchies.map((h) => path.join(h.worker, name)),
      memory: at('memory')!, pids: at('pids')!, cpu: at('cpu'), cpuacct: at('cpuacct'), memoryBytes,
    };
  }
}
