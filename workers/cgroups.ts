// Per-instance limits and accounting with cgroups, under the worker's own cgroup only: one
// interface, one implementation per kind of host (src/host/host-limits.ts tells them apart):
//   cgroups-v1.ts  memory, pids and cpu each on a v1 hierarchy (v1 and hybrid hosts)
//   cgroups-v2.ts  one cgroup2 hierarchy (most current distributions)
// and open-cgroups.ts picks one for this host.
// SANDBOX.md: a memory limit OOM-kills a bomb in ~0.5 s, pids.max stops a fork bomb, a cpu
// quota throttles a busy loop.
//
// A sandbox must be inside its cgroup from its first instruction, or a fork bomb could outrun
// us. clone3(CLONE_INTO_CGROUP) would do it on v2 but is out of Node's reach, so on both kinds
// the worker moves itself into the instance's cgroup, spawns (the child inherits it), and moves
// itself back, all synchronously: no window where the sandbox runs outside. (The python zygote's
// children move themselves into cells made ahead: python-zygote.ts.)
import type { CgroupUsage } from './runners/runner.js';

export { processAlive } from './cgroup-files.js';

export interface InstanceLimits {
  readonly memoryBytes: number;
  readonly pidsMax: number;
  /** Cores (cpu.max quota / period); undefined: no quota. */
  readonly cpu?: number | undefined;
}

/** An instance's cgroup folders: the file each role reads or writes is in the folder named for it. */
export interface InstanceCgroup {
  /** Every folder the instance is in (one per v1 hierarchy, one on v2), to join and remove. */
  readonly dirs: readonly string[];
  readonly memory: string;
  readonly pids: string;
  /** Absent where the host has no cpu controller (v1: no cpu hierarchy; v2: not delegated). */
  readonly cpu: string | undefined;
  readonly cpuacct: string | undefined;
  readonly memoryBytes: number;
}

export interface Cgroups {
  readonly kind: 'v1' | 'v2';
  /** Whether `cpu` quotas are applied (the cpu controller is there and ours). */
  readonly cpuQuotas: boolean;
  create(limits: InstanceLimits): InstanceCgroup;
  /** The same, empty cgroup with other limits (one made ahead of time: the python zygote's cells). */
  resize(cg: InstanceCgroup, limits: Omit<InstanceLimits, 'pidsMax'>): InstanceCgroup;
  /**
   * A cgroup that an OCI runtime creates and limits itself (container mode): `cgroupsPath` for
   * its config.json, and `cg` to read its OOM count and usage and to kill what is left, like ours.
   */
  forRuntime(limits: Omit<InstanceLimits, 'pidsMax'>): { cgroupsPath: string; cg: InstanceCgroup };
  /** An instance cgroup as an OCI runtime's `cgroupsPath` names it (one made by create(), for runsc to join). */
  runtimePath(cg: InstanceCgroup): string;
  /** Runs spawn() with this process inside the instance's cgroup, so the child starts there. */
  spawnInside<T>(cg: InstanceCgroup, spawn: () => T): T;
  /** SIGKILLs every process in the instance (the whole tree, whatever it forked). */
  killAll(cg: InstanceCgroup): void;
  /** SIGTERM to the processes in the instance that `which` picks (all by default). */
  terminateAll(cg: InstanceCgroup, which?: (pid: number) => boolean): void;
  /** Why the kernel stopped the instance, if it was a limit: read before remove(). */
  limitHit(cg: InstanceCgroup): string | undefined;
  /** CPU and memory the instance used so far (a few small synchronous reads). */
  usage(cg: InstanceCgroup): CgroupUsage | undefined;
  /** Removes the instance's cgroups once empty. */
  remove(cg: InstanceCgroup): Promise<void>;
  /** At worker exit: kills whatever is still in the worker's folders, then removes them. */
  close(): Promise<void>;
}
