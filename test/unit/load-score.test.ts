// The load formula against values computed by hand.
import { describe, expect, it } from 'vitest';
import {
  clampPercent,
  emaAlpha,
  IO_FULL_SCALE_BYTES_PER_SECOND,
  LoadScore,
  MEM_FULL_SCALE_BYTES,
  rawParts,
  scoreOf,
} from '../../workers/load-score.js';

const MiB = 1024 * 1024;
const at = (timeMs: number, cpuTicks: number, rssBytes: number, ioBytes: number) => ({ timeMs, cpuTicks, rssBytes, ioBytes });

describe('normalisation', () => {
  it('turns counters into percent of one core, of 512 MiB and of 10 MiB/s', () => {
    // 25 ticks = 0.25 s of CPU in 0.5 s; 256 MiB; 2.5 MiB in 0.5 s = 5 MiB/s
    expect(rawParts(at(0, 100, 0, 1000), at(500, 125, 256 * MiB, 1000 + 2.5 * MiB))).toEqual({ cpu: 50, mem: 50, io: 50 });
    expect(MEM_FULL_SCALE_BYTES).toBe(512 * MiB);
    expect(IO_FULL_SCALE_BYTES_PER_SECOND).toBe(10 * MiB);
  });

  it('takes the clock tick rate as a parameter', () => {
    expect(rawParts(at(0, 0, 0, 0), at(1000, 125, 0, 0), 250).cpu).toBe(50);
  });

  it('clamps to 0–100: several cores, huge RSS, counters that went backwards', () => {
    expect(rawParts(at(0, 0, 0, 0), at(500, 200, 2048 * MiB, 100 * MiB))).toEqual({ cpu: 100, mem: 100, io: 100 });
    expect(rawParts(at(0, 500, 0, 9 * MiB), at(500, 400, 0, 1 * MiB))).toEqual({ cpu: 0, mem: 0, io: 0 });
    expect([clampPercent(NaN), clampPercent(-1), clampPercent(Infinity), clampPercent(42)]).toEqual([0, 0, 100, 42]);
  });

  it('counts a pinned worker as busy as its cores are, whoever keeps them busy', () => {
    const cores = (busyTicks: number, totalTicks: number) => ({ busyTicks, totalTicks });
    // The tree used 10 % of a core; its core was 80 % busy (a CPU hog beside it).
    const prev = { ...at(0, 0, 0, 0), cores: cores(1000, 5000) };
    expect(rawParts(prev, { ...at(500, 5, 0, 0), cores: cores(1040, 5050) }).cpu).toBeCloseTo(80, 9);
    // Its own use counts when it is the larger (its cores are not all it runs on, say).
    expect(rawParts(prev, { ...at(500, 40, 0, 0), cores: cores(1010, 5050) }).cpu).toBeCloseTo(80, 9);
    // No core counters on either side, or no time passed on them: the tree alone.
    expect(rawParts(at(0, 0, 0, 0), { ...at(500, 5, 0, 0), cores: cores(1040, 5050) }).cpu).toBeCloseTo(10, 9);
    expect(rawParts(prev, { ...at(500, 5, 0, 0), cores: cores(1000, 5000) }).cpu).toBeCloseTo(10, 9);
  });

  it('weights the score 0.5 cpu + 0.3 mem + 0.2 io', () => {
    expect(scoreOf(100, 0, 0)).toBe(50);
    expect(scoreOf(0, 100, 0)).toBe(30);
    expect(scoreOf(0, 0, 100)).toBeCloseTo(20, 12);
    expect(scoreOf(100, 100, 100)).toBe(100);
  });

  it('uses α = 0.3 per 500 ms and the same decay per unit of time otherwise', () => {
    expect(emaAlpha(500)).toBeCloseTo(0.3, 12);
    expect(emaAlpha(1000)).toBeCloseTo(1 - 0.7 * 0.7, 12); // two 500 ms steps with no new input
    expect(emaAlpha(250)).toBeCloseTo(1 - Math.sqrt(0.7), 12);
  });
});

describe('LoadScore', () => {
  it('only primes on the first sample, then seeds the averages with the first rates', () => {
    const load = new LoadScore();
    expect(load.update(at(1000, 100, 256 * MiB, 0))).toBeUndefined();
    expect(load.last()).toBeUndefined();
    const first = load.update(at(1500, 125, 256 * MiB, 2.5 * MiB));
    expect(first).toEqual({ cpu: 50, mem: 50, io: 50, score: 50 });
    expect(load.last()).toBe(first);
  });

  it('smooths each part with the EMA (hand-computed)', () => {
    const load = new LoadScore();
    load.update(at(0, 0, 0, 0));
    load.update(at(500, 25, 256 * MiB, 2.5 * MiB)); // 50, 50, 50
    // raw 100, 100, 0 → 50 + 0.3·50 = 65, 65, 50 − 0.3·50 = 35
    const second = load.update(at(1000, 75, 512 * MiB, 2.5 * MiB))!;
    expect(second.cpu).toBeCloseTo(65, 10);
    expect(second.mem).toBeCloseTo(65, 10);
    expect(second.io).toBeCloseTo(35, 10);
    expect(second.score).toBeCloseTo(0.5 * 65 + 0.3 * 65 + 0.2 * 35, 10); // 59
    // raw 0, 0, 0 → 65·0.7 = 45.5, 45.5, 35·0.7 = 24.5
    const third = load.update(at(1500, 75, 0, 2.5 * MiB))!;
    expect([third.cpu, third.mem, third.io]).toEqual([expect.closeTo(45.5, 10), expect.closeTo(45.5, 10), expect.closeTo(24.5, 10)]);
    expect(third.score).toBeCloseTo(59 * 0.7, 10);
  });

  it('treats a negative delta (a child reaped between samples) as 0, not as negative load', () => {
    const load = new LoadScore();
    load.update(at(0, 1000, 0, 5 * MiB));
    load.update(at(500, 1050, 0, 5 * MiB)); // cpu 100
    const after = load.update(at(1000, 900, 0, 1 * MiB))!; // counters fell
    expect(after.cpu).toBeCloseTo(70, 10);
    expect(after.io).toBe(0);
    // the next delta is measured from the lower value
    expect(load.update(at(1500, 925, 0, 1 * MiB))!.cpu).toBeCloseTo(70 + 0.3 * (50 - 70), 10);
  });

  it('re-primes when the clock does not move forward', () => {
    const load = new LoadScore();
    load.update(at(0, 0, 0, 0));
    const seeded = load.update(at(500, 25, 0, 0))!;
    expect(load.update(at(500, 500, 0, 0))).toBe(seeded);
    expect(load.update(at(400, 500, 0, 0))).toBe(seeded);
    // measured from the re-primed sample (400 ms, 500 ticks): 25 ticks in 500 ms = 50 %
    expect(load.update(at(900, 525, 0, 0))!.cpu).toBeCloseTo(50, 10);
  });
});
