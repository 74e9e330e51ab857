import { describe, expect, it } from 'vitest';
import { CallWindow, LiveStats, WINDOW_S } from '../../src/observe/live-stats.js';
import { CAPACITY, LogBook } from '../../src/observe/log-book.js';
import { traceContext } from '../../src/http/pipeline/trace.js';

describe('CallWindow', () => {
  it('gives p50 and p99 within 20 % of the true quantiles', () => {
    const w = new CallWindow();
    for (let i = 1; i <= 1000; i++) w.record(100, i / 10, false); // 0.1 … 100 ms
    const s = w.summary(100);
    expect(s.calls).toBe(1000);
    expect(s.rps).toBe(1000 / WINDOW_S);
    expect(s.p50Ms! / 50).toBeGreaterThanOrEqual(1);
    expect(s.p50Ms! / 50).toBeLessThan(1.2);
    expect(s.p99Ms! / 99).toBeGreaterThanOrEqual(1);
    expect(s.p99Ms! / 99).toBeLessThan(1.2);
  });

  it('forgets seconds older than the window, and a reused slot starts empty', () => {
    const w = new CallWindow();
    w.record(100, 5, true);
    w.record(105, 1, false);
    expect(w.summary(105)).toMatchObject({ calls: 2, errors: 1 });
    expect(w.summary(100 + WINDOW_S)).toMatchObject({ calls: 1, errors: 0 });
    w.record(100 + WINDOW_S, 2, false); // same slot as second 100
    expect(w.summary(100 + WINDOW_S)).toMatchObject({ calls: 2, errors: 0 });
    expect(w.summary(200)).toEqual({ calls: 0, rps: 0, p50Ms: null, p99Ms: null, errors: 0 });
  });

  it('keeps a route\'s CPU ms and peak MiB: the mean exactly, p99 within 20 %, only from calls that reported them', () => {
    const w = new CallWindow(true);
    for (let i = 1; i <= 100; i++) w.record(100, 5, false, i, 10 * i); // cpu 1 … 100 ms, 10 … 1000 MiB
    w.record(100, 5, false); // no usage reported: counted as a call only
    const s = w.routeSummary(100);
    expect(s.calls).toBe(101);
    expect(s.cpuMeanMs).toBe(50.5);
    expect(s.memPeakMeanMb).toBe(505);
    expect(s.cpuP99Ms! / 99).toBeGreaterThanOrEqual(1);
    expect(s.cpuP99Ms! / 99).toBeLessThan(1.2);
    expect(s.memPeakP99Mb! / 990).toBeGreaterThanOrEqual(1);
    expect(s.memPeakP99Mb! / 990).toBeLessThan(1.2);
    // A reused slot starts empty; a window without usage has none to give.
    expect(w.routeSummary(100 + WINDOW_S)).toMatchObject({ calls: 0, cpuMeanMs: null, cpuP99Ms: null, memPeakMeanMb: null, memPeakP99Mb: null });
    w.record(100 + WINDOW_S, 1, false, 2, 3);
    expect(w.routeSummary(100 + WINDOW_S)).toMatchObject({ calls: 1, cpuMeanMs: 2, memPeakMeanMb: 3 });
    const plain = new CallWindow();
    plain.record(100, 5, false, 7, 8);
    expect(plain.routeSummary(100)).toMatchObject({ calls: 1, cpuMeanMs: null, memPeakMeanMb: null });
  });
});

describe('LiveStats', () => {
  it('counts per route and worker, keeps recent errors newest first, and prunes what is gone', () => {
    let now = 1_000_000;
    const live = new LiveStats(() => now);
    const call = { route: 'GET:/a', status: 200, ms: 3, worker: 'w1', code: undefined, message: undefined, requestId: 'r1' };
    live.record(call);
    live.record({ ...call, status: 502, code: 'WORKER_DIED', message: 'gone', requestId: 'r2' });
    live.record({ ...call, route: undefined, worker: undefined, status: 404, code: 'ROUTE_NOT_FOUND', requestId: 'r3' });
    expect(live.route('GET:/a')).toMatchObject({ calls: 2, errors: 1, cpuMeanMs: null, memPeakMeanMb: null });
    live.record({ ...call, requestId: 'r4', cpuUs: 1500, memPeak: 64 * 1048576 });
    expect(live.route('GET:/a')).toMatchObject({ calls: 3, cpuMeanMs: 1.5, memPeakMeanMb: 64 });
    expect(live.worker('w1')).not.toHaveProperty('cpuMeanMs'); // per route only
    expect(live.worker('w1')).toMatchObject({ calls: 3, errors: 1 });
    expect(live.recentErrors().map((e) => e.requestId)).toEqual(['r2']); // a 404 is the client's, not an error of ours
    live.sampleWorkers(new Map([['w1', { score: 1, cpu: 2, mem: 3, io: 4, inFlight: 0 }]]));
    expect(live.workerHistory().w1).toHaveLength(1);
    now += (WINDOW_S + 1) * 1000;
    live.prune(() => false, () => false);
    live.sampleWorkers(new Map());
    expect(live.workerHistory()).toEqual({});
    expect(live.route('GET:/a').calls).toBe(0);
  });
});

describe('LogBook', () => {
  const entry = (route: string, i: number) => ({ level: 'info' as const, kind: 'access' as const, route, requestId: `r${i}`, msg: `m${i}` });

  it('reads after a seq, by route, the newest `limit`, and keeps at most CAPACITY entries', () => {
    const book = new LogBook();
    for (let i = 1; i <= CAPACITY + 10; i++) book.add(entry(i % 2 ? 'GET:/odd' : 'GET:/even', i));
    const all = book.read(0, CAPACITY * 2);
    expect(all.entries).toHaveLength(CAPACITY);
    expect(all.entries[0]!.seq).toBe(11);
    expect(all.next).toBe(CAPACITY + 10);
    const odd = book.read(CAPACITY, 3, 'GET:/odd');
    expect(odd.entries.map((e) => e.seq)).toEqual([CAPACITY + 5, CAPACITY + 7, CAPACITY + 9]);
    expect(book.read(all.next, 10)).toEqual({ entries: [], next: all.next });
  });

  it('tells followers of each new entry until they stop', () => {
    const book = new LogBook();
    const seen: number[] = [];
    const stop = book.follow((e) => seen.push(e.seq));
    book.add(entry('GET:/a', 1));
    stop();
    book.add(entry('GET:/a', 2));
    expect(seen).toEqual([1]);
  });
});

describe('traceContext (W3C traceparent)', () => {
  const TRACE = '0af7651916cd43dd8448eb211c80319c';
  it('keeps the client trace id and flags under a new span id', () => {
    const t = traceContext(`00-${TRACE}-b7ad6b7169203331-01`, undefined);
    expect(t.traceId).toBe(TRACE);
    expect(t.child).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(t.child).not.toContain('b7ad6b7169203331');
  });

  it('starts a new trace for a missing or invalid header, from the request uuid when there is one', () => {
    const uuid = '39faa496-c76c-4be4-8823-0122f848100d';
    expect(traceContext(undefined, uuid).traceId).toBe('39faa496c76c4be488230122f848100d');
    for (const bad of ['', 'garbage', `ff-${TRACE}-b7ad6b7169203331-01`, `00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`, `00-${TRACE.toUpperCase()}-b7ad6b7169203331-01`, `00-${TRACE}-b7ad6b7169203331-01-extra`]) {
      const t = traceContext(bad, undefined);
      expect(t.traceId, bad).toMatch(/^[0-9a-f]{32}$/);
      expect(t.traceId, bad).not.toBe(TRACE);
      expect(t.child, bad).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    }
    // A later version may add fields: accepted.
    expect(traceContext(`01-${TRACE}-b7ad6b7169203331-01-more`, undefined).traceId).toBe(TRACE);
  });
});
