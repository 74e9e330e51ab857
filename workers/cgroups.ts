// Per-instance memory and pids limits with cgroups v1, under the worker's own cgroups only
// (SANDBOX.md: a memory limit OOM-kills a bomb in ~0.5 s, pids.max stops a fork bomb).
//
//   /sys/fs/cgroup/{memory,pids}<own path>/faas-<worker>-<pid>/i<n>
//
// A sandbox must be inside its cgroup from its first instruction, or a fork bomb could
// outrun us. So the worker moves itself into the instance's cgroups, spawns (the child
// inherits them), and moves itself back, all synchronously: no window where the sandbox runs
// outside. Hosts without writable v1 memory+pids hierarchies (pure cgroup2 without delegation,
// or not root) get no cgroup limits; the worker says so once at start.
import fs from 'node:fs';
import path from 'node:path';

const MOUNT = '/sys/fs/cgroup';
const CONTROLLERS = ['memory', 'pids'] as const;
type Controller = (typeof CONTROLLERS)[number];

export interface InstanceCgroup {
  readonly dirs: Readonly<Record<Controller, string>>;
  readonly memoryBytes: number;
}

export class Cgroups {
  private seq = 0;

  private constructor(
    /** The cgroup each controller had the worker in, to move back to after a spawn. */
    private readonly own: Readonly<Record<Controller, string>>,
    private readonly workerDirs: Readonly<Record<Controller, string>>,
    /** This worker's folder in every other hierarchy, where an OCI runtime makes its containers' cgroups. */
    private readonly otherDirs: readonly string[],
  ) {}

  /** Sets up this worker's cgroups, or explains why it cannot. */
  static open(workerId: string, procSelfCgroup = '/proc/self/cgroup'): Cgroups | string {
    const own = {} as Record<Controller, string>;
    const lines = fs.readFileSync(procSelfCgroup, 'utf8').split('\n');
    for (const c of CONTROLLERS) {
      const line = lines.find((l) => l.split(':')[1]?.split(',').includes(c));
      if (!line) return `no cgroup v1 ${c} hierarchy (a pure cgroup2 host): instances run without cgroup memory/pids limits`;
      own[c] = path.join(MOUNT, c, line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
    }
    const workerDirs = {} as Record<Controller, string>;
    const name = `faas-${workerId}-${process.pid}`;
    try {
      for (const c of CONTROLLERS) {
        removeStale(own[c]);
        workerDirs[c] = path.join(own[c], name);
        fs.mkdirSync(workerDirs[c], { recursive: true });
      }
    } catch (err) {
      return `cannot create cgroups under ${own.memory} and ${own.pids} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): instances run without cgroup memory/pids limits`;
    }
    const others = otherHierarchies(lines);
    for (const dir of others) removeStale(dir);
    return new Cgroups(own, workerDirs, others.map((dir) => path.join(dir, name)));
  }

  create(memoryBytes: number, pidsMax: number): InstanceCgroup {
    const name = `i${++this.seq}`;
    const dirs = { memory: path.join(this.workerDirs.memory, name), pids: path.join(this.workerDirs.pids, name) };
    fs.mkdirSync(dirs.memory);
    fs.mkdirSync(dirs.pids);
    fs.writeFileSync(path.join(dirs.memory, 'memory.limit_in_bytes'), String(memoryBytes));
    tryWrite(path.join(dirs.memory, 'memory.memsw.limit_in_bytes'), String(memoryBytes)); // no swapping past it, where swap accounting exists
    fs.writeFileSync(path.join(dirs.pids, 'pids.max'), String(pidsMax));
    return { dirs, memoryBytes };
  }

  /** The same cgroup with another memory limit (an empty one, made ahead of time: the python zygote's cells). */
  resize(cg: InstanceCgroup, memoryBytes: number): InstanceCgroup {
    // memsw first when growing, memory first when shrinking: memsw may never be below memory.
    const files = ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes'];
    for (const file of memoryBytes >= cg.memoryBytes ? files.reverse() : files) {
      if (file === 'memory.limit_in_bytes') fs.writeFileSync(path.join(cg.dirs.memory, file), String(memoryBytes));
      else tryWrite(path.join(cg.dirs.memory, file), String(memoryBytes)); // where swap accounting exists
    }
    return { dirs: cg.dirs, memoryBytes };
  }

  /**
   * A cgroup that an OCI runtime creates and limits itself (container mode): `cgroupsPath` is
   * relative, so runc puts it under its own cgroups, which are the worker's, inside this
   * worker's folders; `cg` reads its OOM count and kills what is left, like ours.
   */
  forRuntime(memoryBytes: number): { cgroupsPath: string; cg: InstanceCgroup } {
    const name = `c${++this.seq}`;
    const cgroupsPath = path.join(path.relative(this.own.memory, this.workerDirs.memory), name);
    return { cgroupsPath, cg: { dirs: { memory: path.join(this.workerDirs.memory, name), pids: path.join(this.workerDirs.pids, name) }, memoryBytes } };
  }

  /** Runs spawn() with this process inside the instance's cgroups, so the child starts there. */
  spawnInside<T>(cg: InstanceCgroup, spawn: () => T): T {
    for (const c of CONTROLLERS) fs.writeFileSync(path.join(cg.dirs[c], 'cgroup.procs'), String(process.pid));
    try {
      return spawn();
    } finally {
      for (const c of CONTROLLERS) fs.writeFileSync(path.join(this.own[c], 'cgroup.procs'), String(process.pid));
    }
  }

  /** SIGKILLs every process left in the instance's pids cgroup (the whole tree, whatever it forked). */
  killAll(cg: InstanceCgroup): void {
    killPids(readPids(cg.dirs.pids));
  }

  /** Sends SIGTERM to the processes in the instance's pids cgroup that `which` picks (all by default). */
  terminateAll(cg: InstanceCgroup, which: (pid: number) => boolean = () => true): void {
    killPids(readPids(cg.dirs.pids).filter(which), 'SIGTERM');
  }

  /** Why the kernel stopped the instance, if it was a limit: read before remove(). */
  limitHit(cg: InstanceCgroup): string | undefined {
    // oom_kill counts the cgroup's OOM kills (kernel ≥ 4.13); failcnt, where that is missing,
    // counts allocations that hit the limit (seen 0 here even when the OOM killer ran).
    const oomKills = /^oom_kill (\d+)$/m.exec(tryRead(path.join(cg.dirs.memory, 'memory.oom_control')) ?? '')?.[1];
    const hit = oomKills !== undefined ? Number(oomKills) > 0 : Number(tryRead(path.join(cg.dirs.memory, 'memory.failcnt')) ?? 0) > 0;
    if (hit) {
      return `memory limit of ${Math.round(cg.memoryBytes / 1048576)} MiB (memory_mb) exceeded`;
    }
    return undefined;
  }

  /** Removes the instance's cgroups once empty; the kernel may say EBUSY for a moment after the last exit. */
  async remove(cg: InstanceCgroup): Promise<void> {
    for (const c of CONTROLLERS) await rmdirRetrying(cg.dirs[c]);
  }

  /** At worker exit: the worker's own folders (instances are gone by then). */
  async close(): Promise<void> {
    for (const dir of [...Object.values(this.workerDirs), ...this.otherDirs]) await removeTree(dir);
  }
}

/**
 * The worker's cgroup in each v1 hierarchy but memory and pids, and in cgroup2 (`0::`,
 * mounted at /sys/fs/cgroup/unified on a hybrid host): runc creates a container's cgroup in
 * every one of them, and leaves the worker's folder behind when it is done.
 */
function otherHierarchies(lines: readonly string[]): string[] {
  const dirs: string[] = [];
  for (const line of lines) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1]!.split(',');
    if (controllers.some((c) => (CONTROLLERS as readonly string[]).includes(c))) continue;
    const mount = m[1] === '' ? 'unified' : m[1]!.replace(/^name=/, '');
    const dir = path.join(MOUNT, mount, m[2]!);
    if (fs.existsSync(dir)) dirs.push(dir);
  }
  return dirs;
}

function killPids(pids: readonly number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function readPids(dir: string): number[] {
  return (tryRead(path.join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number);
}

function tryRead(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function tryWrite(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch {
    /* optional knob */
  }
}

async function rmdirRetrying(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Removes a worker folder and its instance folders (cgroup folders are removed with rmdir, innermost first). */
async function removeTree(dir: string): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  await rmdirRetrying(dir).catch(() => {}); // still busy after a second: a later worker's removeStale retries
}

/** Folders left by workers that were SIGKILLed (their pid is gone): kill what is inside, remove them. */
function removeStale(own: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(own);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^faas-.+-(\d+)$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    const dir = path.join(own, name);
    for (const sub of fs.readdirSync(dir, { withFileTypes: true })) {
      if (sub.isDirectory()) killPids(readPids(path.join(dir, sub.name)));
    }
    void removeTree(dir);
  }
}

/** Whether a pid is in use (by any user: EPERM means it exists). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
