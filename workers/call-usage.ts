// Per-call resource accounting: what an instance's cgroup used while a call ran, from two reads of
// SandboxProcess.usage() (runner.ts), one as the call is sent to the instance and one as its
// answer arrives (instance.ts). The worker sends the figures with the call's Result
// (ResultMessage cpuUs, memPeak); the gateway logs, times and counts them.
//
// They are the instance's figures, not the call's alone: a node instance runs many calls at once,
// and every call in flight on it during the same time gets the same CPU and the same peak. A
// python instance (and a node host running a WebAssembly module) runs one call at a time, so
// there the figures are the call's, plus whatever the runtime host did meanwhile (its GC).
import type { CgroupUsage } from './runners/runner.js';

/** One call's share of its instance's cgroup; a field is absent when it could not be read. */
export interface CallUsage {
  /** CPU time of the whole instance while the call ran, µs. */
  readonly cpuUs?: number;
  /** Most memory the instance was charged while the call ran (as far as the reads can tell), bytes. */
  readonly memPeak?: number;
}

/**
 * The call's figures from the reads before and after it; undefined when either read is missing.
 *
 * Memory: the kernel's peak (memory.peak, memory.max_usage_in_bytes) is the instance's high-water
 * mark over its whole life, not the call's. If it rose during the call, the new peak was reached
 * during the call, so it is the call's peak. If it did not, the call's own peak is somewhere
 * between what was charged at its start and end and the old peak, which an earlier call or the
 * instance's start-up set; the most that is known to have been charged during the call is the
 * larger of the two reads, and that is what is reported — never a figure the call may not have
 * reached. Without a kernel peak (undefined), that is all there is too.
 */
export function callUsage(before: CgroupUsage | undefined, after: CgroupUsage | undefined): CallUsage | undefined {
  if (before === undefined || after === undefined) return undefined;
  const cpu = after.cpuUsec - before.cpuUsec;
  const rose = after.peakBytes !== undefined && before.peakBytes !== undefined && after.peakBytes > before.peakBytes;
  const mem = rose ? after.peakBytes! : Math.max(before.memoryBytes, after.memoryBytes);
  // A counter that went backwards (a wrap, a read across a move) is no figure: never a negative time.
  const cpuUs = Number.isFinite(cpu) && cpu >= 0 ? Math.round(cpu) : undefined;
  const memPeak = Number.isFinite(mem) && mem >= 0 ? Math.round(mem) : undefined;
  if (cpuUs !== undefined && memPeak !== undefined) return { cpuUs, memPeak };
  if (cpuUs !== undefined) return { cpuUs };
  return memPeak !== undefined ? { memPeak } : undefined;
}
