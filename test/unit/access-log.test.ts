import { describe, expect, it } from 'vitest';
import { accessLine } from '../../src/http/access-log.js';
import type { Answered } from '../../src/http/server.js';

const ok: Answered = {
  route: 'GET:/hello', method: 'GET', path: '/hello', status: 200, ms: 1.23456, fnMs: 0.5, cold: true, worker: 'w1',
  code: undefined, message: undefined, requestId: 'r-1', traceId: '0af7651916cd43dd8448eb211c80319c',
};

describe('accessLine', () => {
  it('is one line of JSON in the log\'s shape, with durations to the microsecond', () => {
    const line = accessLine(ok, Date.UTC(2026, 11, 2, 18, 0, 0, 5));
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual({
      level: 'info', time: '2026-12-02T18:00:00.005Z', component: 'gateway', msg: 'request', route: 'GET:/hello', method: 'GET', path: '/hello',
      status: 200, worker: 'w1', ms: 1.235, fnMs: 0.5, cold: true, requestId: 'r-1', traceId: '0af7651916cd43dd8448eb211c80319c',
    });
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
