// The worker's cgroups on whatever this host has (cgroups.ts: the interface; src/host/host-limits.ts
// tells the kinds of host apart), or why there are none.
import { detectHostLimits, type HostLimits } from '../src/host/host-limits.js';
import type { Cgroups } from './cgroups.js';
import { CgroupsV1 } from './cgroups-v1.js';
import { CgroupsV2 } from './cgroups-v2.js';

/** Sets up this worker's cgroups on whatever this host has, or explains why it cannot. */
export function openCgroups(workerId: string, host: HostLimits = detectHostLimits()): Cgroups | string {
  if (host.missing.memory !== undefined || host.missing.pids !== undefined) {
    return `instances run without cgroup memory/pids limits: ${host.missing.memory ?? host.missing.pids}`;
  }
  const name = `faas-${workerId}-${process.pid}`;
  try {
    return host.kind === 'v2' ? CgroupsV2.open(host.base!, name, host.missing.cpu === undefined) : CgroupsV1.open(name);
  } catch (err) {
    return `cannot create this worker's cgroups (${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}): instances run without cgroup memory/pids limits`;
  }
}

