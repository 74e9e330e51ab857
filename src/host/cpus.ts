// The CPUs this machine and this process may use, as the kernel lists them: shared by the
// gateway (its supervisor pins workers with --pin) and the workers (their cpu load).
import fs from 'node:fs';

/** A kernel CPU list ("0-3,8,10-11", as in Cpus_allowed_list) as numbers; undefined if malformed. */
export function parseCpuList(text: string): number[] | undefined {
  const cpus = new Set<number>();
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 4096) return undefined;
    for (let c = from; c <= to; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The CPUs this process may run on (its affinity mask), or undefined where /proc cannot say. */
export function allowedCpus(): number[] | undefined {
  try {
    return parseCpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'latin1'))?.[1] ?? '');
  } catch {
    return undefined;
  }
}
