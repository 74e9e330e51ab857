import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/http/rate-limit.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
}
const header = (v: { headers: ReadonlyArray<readonly [string, string]> }, name: string): string | undefined =>
  v.headers.find(([k]) => k === name)?.[1];

describe('RateLimiter', () => {
  it('lets a burst through, then one call per 1/rps seconds, and says when to come back', () => {
    const c = clock();
    const rl = new RateLimiter(100, c.now);
    const limit = { rps: 2, burst: 3 };
    const verdicts = Array.from({ length: 4 }, () => rl.take('GET:/a', 'ip 1.2.3.4', limit));
    expect(verdicts.map((v) => v.allowed)).toEqual([true, true, true, false]);
    expect(header(verdicts[0]!, 'ratelimit-policy')).toBe('"burst";q=3;w=2');
    expect(header(verdicts[2]!, 'ratelimit')).toBe('"burst";r=0;t=2');
    expect(header(verdicts[3]!, 'retry-after')).toBe('1');
    expect(header(verdicts[2]!, 'retry-after')).toBeUndefined();
    c.advance(499);
    expect(rl.take('GET:/a', 'ip 1.2.3.4', limit).allowed).toBe(false);
    c.advance(1);
    expect(rl.take('GET:/a', 'ip 1.2.3.4', limit).allowed).toBe(true);
  });

  it('keeps one bucket per route and client', () => {
    const rl = new RateLimiter(100, clock().now);
    const limit = { rps: 1, burst: 1 };
    expect(rl.take('GET:/a', 'ip 1', limit).allowed).toBe(true);
    expect(rl.take('GET:/a', 'ip 1', limit).allowed).toBe(false);
    expect(rl.take('GET:/a', 'ip 2', limit).allowed).toBe(true);
    expect(rl.take('GET:/b', 'ip 1', limit).allowed).toBe(true);
    expect(rl.take('GET:/a', 'key ci', limit).allowed).toBe(true);
  });

  it('forgets full buckets, and stays under its cap however many clients come', () => {
    const c = clock();
    const rl = new RateLimiter(1000, c.now);
    const limit = { rps: 1, burst: 5 };
    for (let i = 0; i < 50_000; i++) rl.take('GET:/a', `ip ${i}`, limit);
    expect(rl.size).toBeLessThanOrEqual(1000);
    expect(rl.evicted).toBe(49_000);
    c.advance(11_000); // every bucket refilled; the next call sweeps them
    rl.take('GET:/a', 'ip new', limit);
    expect(rl.size).toBe(1);
  });

  it('applies a changed limit to an existing bucket', () => {
    const rl = new RateLimiter(100, clock().now);
    expect(rl.take('GET:/a', 'ip 1', { rps: 1, burst: 1 }).allowed).toBe(true);
    expect(rl.take('GET:/a', 'ip 1', { rps: 1, burst: 1 }).allowed).toBe(false);
    expect(header(rl.take('GET:/a', 'ip 1', { rps: 10, burst: 20 }), 'ratelimit-policy')).toBe('"burst";q=20;w=2');
  });
});
