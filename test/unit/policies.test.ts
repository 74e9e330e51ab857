// Every scheduling policy against one contract (candidates, determinism, a million seeded picks),
// then what each one is for.
import { describe, expect, it } from 'vitest';
import { createPolicy, IN_FLIGHT_WEIGHT, POLICY_NAMES, TIE_EPSILON, type CallView, type PolicyName, type WorkerView } from '../../src/scheduler/policies.js';

const NOW = 10_000;
const STALE_AFTER_MS = 1100;
/** A worker; `fn` says which functions it has warm and how many calls of each it runs. */
const w = (id: string, score: number, inFlight = 0, ageMs = 100, connected = true,
  fn: { warm?: string[]; calls?: Record<string, number> } = {}): WorkerView =>
  ({ id, score, inFlight, lastReportMs: NOW - ageMs, connected,
    inFlightOf: (key) => fn.calls?.[key] ?? 0, isWarm: (key) => fn.warm?.includes(key) ?? false });
const call = (maxConcurrency = 100, refusedBy: string[] = []): CallView => ({ key: 'GET:/f', maxConcurrency, refusedBy: new Set(refusedBy) });

// The deterministic random source (mulberry32) the simulation and the benchmarks use. A path in a
// variable: tsc does not type the plain-JS module, and needs no declaration for it.
const helpersPath = new URL('../../scripts/lib/bench-helpers.mjs', import.meta.url).href;
const { seeded } = (await import(helpersPath)) as { seeded: (seed: number) => () => number };

/** Share of `n` picks each worker gets, with a fresh policy and a seeded random source. */
function shares(name: PolicyName, workers: readonly WorkerView[], n: number, seed = 42, c?: CallView): Map<string, number> {
  const policy = createPolicy(name, STALE_AFTER_MS);
  const random = seeded(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = policy.pick(workers, NOW, random, c)!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return new Map([...counts].map(([id, c]) => [id, c / n]));
}

describe.each(POLICY_NAMES)('policy %s: the contract', (name) => {
  it('returns undefined when no worker is a candidate', () => {
    const policy = createPolicy(name, STALE_AFTER_MS);
    expect(policy.pick([], NOW, Math.random)).toBeUndefined();
    expect(policy.pick([w('stale', 0, 0, 5000), w('gone', 0, 0, 100, false)], NOW, Math.random)).toBeUndefined();
  });

  it('never picks a stale or disconnected worker, and always one of those given (10k random snapshots)', () => {
    const policy = createPolicy(name, STALE_AFTER_MS);
    const random = seeded(7);
    for (let i = 0; i < 10_000; i++) {
      const workers = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, k) =>
        w(`w${k}`, random() * 100, Math.floor(random() * 5), random() * 2 * STALE_AFTER_MS, random() > 0.2));
      const picked = policy.pick(workers, NOW, random);
      const candidates = workers.filter((x) => x.connected && NOW - x.lastReportMs <= STALE_AFTER_MS);
      if (candidates.length === 0) expect(picked).toBeUndefined();
      else expect(candidates).toContain(picked);
    }
  });

  it("never picks a worker at the call's max_concurrency or one that refused the call (10k random snapshots)", () => {
    const policy = createPolicy(name, STALE_AFTER_MS);
    const random = seeded(11);
    for (let i = 0; i < 10_000; i++) {
      const workers = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, k) => {
        const inFlight = Math.floor(random() * 5);
        return w(`w${k}`, random() * 100, inFlight, random() * 2 * STALE_AFTER_MS, random() > 0.2,
          { warm: random() > 0.5 ? ['GET:/f'] : [], calls: { 'GET:/f': Math.floor(random() * (inFlight + 1)) } }); // some of its calls
      });
      const c = call(1 + Math.floor(random() * 2), workers.filter(() => random() < 0.2).map((x) => x.id));
      const picked = policy.pick(workers, NOW, random, c);
      const candidates = workers.filter((x) => x.connected && NOW - x.lastReportMs <= STALE_AFTER_MS &&
        x.inFlightOf(c.key) < c.maxConcurrency && !c.refusedBy!.has(x.id));
      if (candidates.length === 0) expect(picked).toBeUndefined();
      else expect(candidates).toContain(picked);
    }
  });

  it('is deterministic: the same snapshots and random source give the same picks', () => {
    const run = (): string[] => {
      const policy = createPolicy(name, STALE_AFTER_MS);
      const random = seeded(3);
      const workers = [w('a', 10, 1), w('b', 12), w('c', 11, 0, 900), w('d', 60)];
      return Array.from({ length: 200 }, () => policy.pick(workers, NOW, random)!.id);
    };
    expect(run()).toEqual(run());
  });
});

describe('what each policy is for (1M seeded picks where it is a distribution)', () => {
  const N = 1_000_000;
  const idle = [w('a', 5), w('b', 5), w('c', 5), w('d', 5)];

  it('least-loaded: the fewest calls in flight, then the lowest score; near-equal scores share evenly', () => {
    const policy = createPolicy('least-loaded', STALE_AFTER_MS);
    expect(policy.pick([w('a', 40), w('b', 10), w('c', 30)], NOW, Math.random)!.id).toBe('b');
    expect(policy.pick([w('a', 0, 1), w('b', 100)], NOW, Math.random)!.id).toBe('b'); // no score outweighs a call in flight
    expect(policy.pick([w('a', 60, 2), w('b', 20, 2), w('c', 5, 3)], NOW, Math.random)!.id).toBe('b');
    expect(IN_FLIGHT_WEIGHT).toBeGreaterThan(100 + TIE_EPSILON);
    const s = shares('least-loaded', [w('a', 5), w('b', 5.5), w('c', 4.8), w('d', 40)], N);
    expect(s.get('d')).toBeUndefined();
    for (const id of ['a', 'b', 'c']) expect(Math.abs(s.get(id)! - 1 / 3)).toBeLessThan(0.005);
  });

  it('least-loaded: among equally loaded workers, one with the function warm (affinity); never a busier one for it', () => {
    const policy = createPolicy('least-loaded', STALE_AFTER_MS);
    const warm = { warm: ['GET:/f'] };
    // Within the tie margin: the warm one, every time.
    const tied = [w('a', 10), w('b', 10 + TIE_EPSILON, 0, 100, true, warm), w('c', 12)];
    const s = shares('least-loaded', tied, 100_000, 5, call());
    expect(s.get('b')).toBe(1);
    // Several warm ones share; a warm one past the margin, or with a call in flight, loses.
    const two = shares('least-loaded', [w('a', 5, 0, 100, true, warm), w('b', 5), w('c', 6, 0, 100, true, warm)], N, 9, call());
    expect(s.get('a')).toBeUndefined();
    expect(Math.abs(two.get('a')! - 0.5)).toBeLessThan(0.005);
    expect(policy.pick([w('cold', 0), w('warm', TIE_EPSILON + 1, 0, 100, true, warm)], NOW, Math.random, call())!.id).toBe('cold');
    expect(policy.pick([w('cold', 90), w('warm', 0, 1, 100, true, warm)], NOW, Math.random, call())!.id).toBe('cold');
    // Warm for another function counts for nothing.
    const other = shares('least-loaded', [w('a', 5), w('b', 5, 0, 100, true, { warm: ['GET:/other'] })], 100_000, 3, call());
    expect(Math.abs(other.get('a')! - 0.5)).toBeLessThan(0.01);
  });

  it('two-choices: the cheaper of two drawn at random, so never the dearest of several; even among equals', () => {
    const s = shares('two-choices', [w('a', 0), w('b', 0, 1), w('c', 0, 2), w('d', 0, 3)], N);
    expect(s.get('d')).toBeUndefined(); // it loses to whichever other worker is drawn with it
    expect(s.get('a')!).toBeGreaterThan(s.get('b')!);
    expect(s.get('b')!).toBeGreaterThan(s.get('c')!);
    const even = shares('two-choices', idle, N);
    for (const id of ['a', 'b', 'c', 'd']) expect(Math.abs(even.get(id)! - 0.25)).toBeLessThan(0.005);
  });

  it('lowest-score (the C original): everything to the first lowest score, in-flight or not', () => {
    expect(shares('lowest-score', idle, 10_000).get('a')).toBe(1); // herding
    const policy = createPolicy('lowest-score', STALE_AFTER_MS);
    expect(policy.pick([w('a', 10, 50), w('b', 11)], NOW, Math.random)!.id).toBe('a');
  });

  it('least-in-flight: the fewest calls in flight, ties evenly', () => {
    const policy = createPolicy('least-in-flight', STALE_AFTER_MS);
    expect(policy.pick([w('a', 0, 3), w('b', 90, 1), w('c', 0, 2)], NOW, Math.random)!.id).toBe('b');
    const s = shares('least-in-flight', idle, N);
    for (const id of ['a', 'b', 'c', 'd']) expect(Math.abs(s.get(id)! - 0.25)).toBeLessThan(0.005);
  });

  it('round-robin: each candidate in turn, skipping the others', () => {
    const policy = createPolicy('round-robin', STALE_AFTER_MS);
    const workers = [w('a', 0), w('b', 0, 0, 5000), w('c', 99), w('d', 0, 0, 100, false)];
    expect(Array.from({ length: 6 }, () => policy.pick(workers, NOW, Math.random)!.id)).toEqual(['a', 'c', 'a', 'c', 'a', 'c']);
    const s = shares('round-robin', idle, N);
    for (const id of ['a', 'b', 'c', 'd']) expect(s.get(id)).toBe(0.25);
  });

  it('random: uniformly, whatever the load', () => {
    const s = shares('random', [w('a', 0), w('b', 90, 9), w('c', 50), w('d', 5)], N);
    for (const id of ['a', 'b', 'c', 'd']) expect(Math.abs(s.get(id)! - 0.25)).toBeLessThan(0.005);
  });
});
