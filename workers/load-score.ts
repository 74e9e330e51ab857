// A worker's load as one number, from two successive /proc samples of its process tree. The
// formula is the C original's (SCHEDULING.md holds its derivation and the measurements):
//
//     cpu   = CPU time used / wall time × 100        percent of ONE core
//             (a worker pinned to cores of its own: the larger of that and how busy its cores
//             are, counting every process on them, so contention from outside shows)
//     mem   = RSS / 512 MiB × 100
//     io    = disk bytes per second / 10 MiB/s × 100
//     each clamped to 0–100, then smoothed per part:  ema ← ema + α·(x − ema),  α = 0.3
//     score = 0.5·cpu + 0.3·mem + 0.2·io             (all three smoothed)
//
// α = 0.3 is defined for 500 ms samples. For another interval (--report-ms, or timer jitter)
// α is rescaled to keep the same decay per unit of time: α(Δt) = 1 − (1 − 0.3)^(Δt / 500 ms),
// which is exactly 0.3 at 500 ms. The first sample only primes the counters; the first rates
// then seed the averages directly (starting them at 0 would make a busy new worker look idle
// for seconds and draw traffic onto it). A counter that goes backwards (a child left the tree
// without being reaped inside it) gives a negative delta, clamped to 0. A sample whose time
// does not move forward re-primes instead of dividing by zero.

import type { CoreTimes } from './proc-stats.js';

/** Weights of the parts in the score; they sum to 1, so the score is 0–100 too. */
export const CPU_WEIGHT = 0.5;
export const MEM_WEIGHT = 0.3;
export const IO_WEIGHT = 0.2;
/** RSS that counts as 100 % memory load, in bytes (512 MiB). */
export const MEM_FULL_SCALE_BYTES = 512 * 1024 * 1024;
/** Disk throughput that counts as 100 % IO load, in bytes per second (10 MiB/s). */
export const IO_FULL_SCALE_BYTES_PER_SECOND = 10 * 1024 * 1024;
/** Smoothing factor of the exponential moving average per EMA_SAMPLE_MS of time. */
export const EMA_ALPHA = 0.3;
/** The sample period EMA_ALPHA is defined for, in milliseconds. */
export const EMA_SAMPLE_MS = 500;
/** USER_HZ on Linux: the unit of the tick counters in /proc/PID/stat. */
export const DEFAULT_CLOCK_TICKS_PER_SECOND = 100;

/** Cumulative counters of a process tree at one instant. */
export interface LoadSample {
  /** A monotonic clock, in milliseconds. */
  readonly timeMs: number;
  readonly cpuTicks: number;
  readonly rssBytes: number;
  readonly ioBytes: number;
  /** With cores of its own (a pinned worker): everything that ran on them, cumulative. */
  readonly cores?: CoreTimes;
}

/** Each part and the score, 0–100. */
export interface LoadParts {
  readonly cpu: number;
  readonly mem: number;
  readonly io: number;
  readonly score: number;
}

export function clampPercent(x: number): number {
  if (!(x > 0)) return 0; // negative and NaN
  return x > 100 ? 100 : x;
}

export function scoreOf(cpu: number, mem: number, io: number): number {
  return CPU_WEIGHT * cpu + MEM_WEIGHT * mem + IO_WEIGHT * io;
}

/** α for a sample `dtMs` after the previous one. */
export function emaAlpha(dtMs: number): number {
  return 1 - (1 - EMA_ALPHA) ** (dtMs / EMA_SAMPLE_MS);
}

/** The unsmoothed, clamped parts between two samples; `cur.timeMs` must exceed `prev.timeMs`. */
export function rawParts(
  prev: LoadSample,
  cur: LoadSample,
  clockTicksPerSecond = DEFAULT_CLOCK_TICKS_PER_SECOND,
): Omit<LoadParts, 'score'> {
  const seconds = (cur.timeMs - prev.timeMs) / 1000;
  const cpuSeconds = (cur.cpuTicks - prev.cpuTicks) / clockTicksPerSecond;
  const tree = (cpuSeconds / seconds) * 100;
  // A worker on cores of its own is as busy as they are, whoever keeps them busy (SCHEDULING.md).
  const coreTicks = prev.cores && cur.cores ? cur.cores.totalTicks - prev.cores.totalTicks : 0;
  const cores = coreTicks > 0 ? ((cur.cores!.busyTicks - prev.cores!.busyTicks) / coreTicks) * 100 : 0;
  return {
    cpu: clampPercent(Math.max(tree, cores)),
    mem: clampPercent((cur.rssBytes / MEM_FULL_SCALE_BYTES) * 100),
    io: clampPercent(((cur.ioBytes - prev.ioBytes) / seconds / IO_FULL_SCALE_BYTES_PER_SECOND) * 100),
  };
}

/** Smoothed load from a stream of samples. */
export class LoadScore {
  private prev: LoadSample | undefined;
  private parts: LoadParts | undefined;

  constructor(private readonly clockTicksPerSecond = DEFAULT_CLOCK_TICKS_PER_SECOND) {}

  /** Feeds one sample; returns the smoothed parts, or undefined while only primed. */
  update(sample: LoadSample): LoadParts | undefined {
    const prev = this.prev;
    this.prev = sample;
    if (!prev || !(sample.timeMs > prev.timeMs)) return this.parts;
    const raw = rawParts(prev, sample, this.clockTicksPerSecond);
    const old = this.parts;
    const a = emaAlpha(sample.timeMs - prev.timeMs);
    const cpu = old ? old.cpu + a * (raw.cpu - old.cpu) : raw.cpu;
    const mem = old ? old.mem + a * (raw.mem - old.mem) : raw.mem;
    const io = old ? old.io + a * (raw.io - old.io) : raw.io;
    this.parts = { cpu, mem, io, score: scoreOf(cpu, mem, io) };
    return this.parts;
  }

  /** The latest smoothed parts; undefined until two samples have been seen. */
  last(): LoadParts | undefined {
    return this.parts;
  }
}
