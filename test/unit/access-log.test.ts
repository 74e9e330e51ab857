import { describe, expect, it } from 'vitest';
import { accessLine } from '../../src/observe/access-log.js';
import type { Answered } from '../../src/calls.js';

const ok: Answered = {
  route: 'GET:/hello', method: 'GET', path: '/hello', status: 200, ms: 1.23456, fnMs: 0.5, cold: true, worker: 'w1',
  cpuUs: 1234, memPeak: 67_108_864 + 52_429, code: undefined, message: undefined, requestId: 'r-1', traceId: '0af7651916cd43dd8448eb211c80319c',
};

describe('accessLine', () => {
  it('is one line of JSON in the log\'s shape, with durations to the microsecond', () => {
    const line = accessLine(ok, Date.UTC(2026, 11, 2, 18, 0, 0, 5));
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual({
      level: 'info', time: '2026-12-02T18:00:00.005Z', component: 'gateway', msg: 'request', route: 'GET:/hello', method: 'GET', path: '/hello',
      status: 200, worker: 'w1', ms: 1.235, fnMs: 0.5, cpuMs: 1.234, memPeakMb: 64.1, cold: true, requestId: 'r-1',
      traceId: '0af7651916cd43dd8448eb211c80319c',
    });
  });

  it('writes the instance\'s CPU ms to the µs and peak memory in MiB to a tenth, null when the worker reported none', () => {
    expect(accessLine({ ...ok, cpuUs: 5, memPeak: 1024 })).toContain('"cpuMs":0.005,"memPeakMb":0,');
    expect(accessLine({ ...ok, cpuUs: 201_873, memPeak: 2 ** 34 })).toContain('"cpuMs":201.873,"memPeakMb":16384,');
    const unknown = accessLine({ ...ok, cpuUs: undefined, memPeak: undefined });
    expect(unknown).toContain('"fnMs":0.5,"cpuMs":null,"memPeakMb":null,"cold":true');
    expect(JSON.parse(unknown)).toMatchObject({ cpuMs: null, memPeakMb: null });
  });

  it('quotes what came from outside, and adds the code and error of a refusal at warn for 5xx', () => {
    const hostile = '/a"b\\c\n\u2028é';
    const line = accessLine({ ...ok, route: undefined, worker: undefined, path: hostile, requestId: 'x"}{', status: 503,
      code: 'NO_WORKER_AVAILABLE', message: 'no "worker"\nat all' });
    expect(line.split('\n')).toHaveLength(2); // the newline in the path and message are escaped
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', route: null, worker: null, path: hostile, requestId: 'x"}{', status: 503,
      code: 'NO_WORKER_AVAILABLE', error: 'no "worker"\nat all' });
  });
});
