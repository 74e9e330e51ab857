import { describe, expect, it } from 'vitest';
import { IN_FLIGHT_WEIGHT, LowestScoreScheduler, type WorkerView } from '../../src/scheduler/score-scheduler.js';

const NOW = 10_000;
const w = (id: string, score: number, inFlight = 0, ageMs = 100, connected = true): WorkerView =>
  ({ id, score, inFlight, lastReportMs: NOW - ageMs, connected });

/** Deterministic random source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LowestScoreScheduler', () => {
  const s = new LowestScoreScheduler(1100);

  it('picks the lowest score', () => {
    expect(s.pick([w('a', 40), w('b', 10), w('c', 30)], NOW, () => 0.5)?.id).toBe('b');
  });

  it('charges calls in flight, so a burst moves off the idlest worker', () => {
    expect(s.pick([w('a', 10, 2), w('b', 20, 0)], NOW, () => 0.5)?.id).toBe('b');
    expect(10 + 2 * IN_FLIGHT_WEIGHT).toBeGreaterThan(20);
  });

  it('never picks a stale or disconnected worker, and returns undefined when none is left', () => {
    expect(s.pick([w('a', 0, 0, 1200), w('b', 90)], NOW, () => 0.5)?.id).toBe('b');
    expect(s.pick([w('a', 0, 0, 100, false), w('b', 90)], NOW, () => 0.5)?.id).toBe('b');
    expect(s.pick([w('a', 0, 0, 5000)], NOW, () => 0.5)).toBeUndefined();
    expect(s.pick([], NOW, () => 0.5)).toBeUndefined();
  });

  it('shares ties evenly (1M picks, seeded)', () => {
    const workers = [w('a', 5), w('b', 5.5), w('c', 4.8), w('d', 40)];
    const random = seeded(42);
    const counts = new Map<string, number>();
    const N = 1_000_000;
    for (let i = 0; i < N; i++) {
      const id = s.pick(workers, NOW, random)!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(counts.get('d')).toBeUndefined();
    for (const id of ['a', 'b', 'c']) expect(Math.abs(counts.get(id)! / N - 1 / 3)).toBeLessThan(0.005);
  });
});
