// Small helpers over cgroup files, shared by cgroups-v1.ts and cgroups-v2.ts.
import fs from 'node:fs';
import path from 'node:path';
import type { CgroupUsage } from './runners/runner.js';

/** `cpu` cores as a CFS quota over a 100 ms period (cpu.max "QUOTA PERIOD", cfs_quota_us). */
export function cpuQuota(cpu: number): { quotaUs: number; periodUs: number } {
  const periodUs = 100_000;
  return { quotaUs: Math.max(1000, Math.round(cpu * periodUs)), periodUs };
}

export function memoryLimitMessage(memoryBytes: number): string {
  return `memory limit of ${Math.round(memoryBytes / 1048576)} MiB (memory_mb) exceeded`;
}

export function killPids(pids: readonly number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export function readPids(dir: string): number[] {
  return (tryRead(path.join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number);
}

export function tryRead(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Writes an optional knob (memory.swap.max where swap accounting is off, say); false when it could not. */
export function tryWrite(file: string, value: string): boolean {
  try {
    fs.writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

/** A number from a file of one, or from a `key value` line of a flat-keyed file (cpu.stat). */
export function readNumber(file: string, key?: string): number | undefined {
  const text = tryRead(file);
  return text === undefined ? undefined : parseNumber(text, key);
}

/** The number a cgroup file holds, or the one on its `key` line; undefined for anything else ("max", nothing). */
function parseNumber(text: string, key?: string): number | undefined {
  let raw = text;
  if (key !== undefined) {
    const line = text.startsWith(`${key} `) ? 0 : text.indexOf(`\n${key} `) + 1; // 0 when neither
    if (line === 0 && !text.startsWith(`${key} `)) return undefined;
    const from = line + key.length + 1;
    const end = text.indexOf('\n', from);
    raw = text.slice(from, end < 0 ? text.length : end);
  }
  const n = Number(raw); // Number() ignores the trailing newline; '' is 0, so refuse it
  return raw.trim() === '' || !Number.isFinite(n) ? undefined : n;
}

/** rmdir, retried while the kernel says EBUSY (for a moment after the last process exits), up to ~`tries` × 50 ms. */
export async function rmdirRetrying(dir: string, tries = 20): Promise<void> {
  for (let attempt = 0; attempt < tries; attempt++) {
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

/** Removes a worker folder and its instance folders (cgroup folders go with rmdir, innermost first). */
export async function removeTree(dir: string, beforeRmdir?: (dir: string) => void): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name), beforeRmdir);
  beforeRmdir?.(dir);
  // Processes just killed may keep a cgroup busy for a while on a loaded host: up to 5 s, then a
  // later worker's removeStale retries.
  await rmdirRetrying(dir, 100).catch(() => {});
}

/**
 * Folders under `parent` left by workers that were SIGKILLed (faas-ID-PID, the pid gone): kill
 * what is inside (`kill` reaches a folder's processes), remove them.
 */
export function removeStale(parent: string, kill: (dir: string) => void): void {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^faas-.+-(\d+)$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    void removeTree(path.join(parent, name), kill);
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

/**
 * A cgroup file holding a number (or flat `key value` lines, like cpu.stat), kept open and read
 * again with pread at offset 0, where the kernel generates it afresh: ≈ 2 µs a read on this
 * 2-core VM, against ≈ 30 µs for fs.readFileSync (open, fstat, reads, close: opening a cgroup
 * file is most of it). For usage(), which the worker reads twice per call. An open file does not
 * keep its cgroup from being removed; once it is, reads fail (ENODEV) and read() is undefined.
 * close() when the instance is gone.
 */
export class CgroupNumberFile {
  private static readonly buffer = Buffer.allocUnsafe(1024);
  private fd: number | undefined;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, 'r');
    } catch {
      this.fd = undefined;
    }
  }

  /** The file's number, or the number on its `key` line; undefined if it cannot be read. */
  read(key?: string): number | undefined {
    if (this.fd === undefined) return undefined;
    const buf = CgroupNumberFile.buffer;
    try {
      return parseNumber(buf.toString('latin1', 0, fs.readSync(this.fd, buf, 0, buf.length, 0)), key);
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = undefined;
  }
}

/**
 * An instance's usage files, kept open (CgroupNumberFile): cpu time (`cpuKey` on a flat-keyed
 * file: cpu.stat), memory now and its peak. What Cgroups.usage() reads twice per call.
 */
export class UsageFiles {
  private readonly files: CgroupNumberFile[];

  constructor(cpuFile: string, private readonly cpuKey: string | undefined, private readonly cpuPerUs: number, memoryFile: string, peakFile: string) {
    this.files = [new CgroupNumberFile(cpuFile), new CgroupNumberFile(memoryFile), new CgroupNumberFile(peakFile)];
  }

  read(): CgroupUsage | undefined {
    const [cpu, memory, peak] = this.files as [CgroupNumberFile, CgroupNumberFile, CgroupNumberFile];
    const cpuRaw = cpu.read(this.cpuKey);
    const memoryBytes = memory.read();
    if (cpuRaw === undefined || memoryBytes === undefined) return undefined;
    return { cpuUsec: Math.round(cpuRaw / this.cpuPerUs), memoryBytes, peakBytes: peak.read() };
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
