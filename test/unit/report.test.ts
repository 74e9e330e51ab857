// The load-report datagram: what the gateway accepts and why it drops the rest.
import { describe, expect, it } from 'vitest';
import type { WorkerReport } from '../../src/protocol/messages.js';
import {
  decodeReport,
  DROP_REASONS,
  encodeReport,
  fitWarmKeys,
  MAX_REPORT_BYTES,
  MAX_WARM_KEYS,
  REPORT_FIELD_RULES,
  validateReport,
  type ReportField,
} from '../../src/protocol/report.js';

const good: WorkerReport = {
  v: 1,
  id: 'w1',
  pid: 4242,
  socket: '/tmp/faas/worker-w1.sock',
  cpu: 12.5,
  mem: 3.25,
  io: 0,
  score: 7.2,
  seq: 0,
  time: 1_700_000_000_000,
  warm: ['GET:/hello', 'POST:/api/resize'],
};

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('encodeReport / decodeReport', () => {
  it('round-trips a report', () => {
    const buf = encodeReport(good);
    expect(buf.length).toBeLessThan(MAX_REPORT_BYTES);
    expect(decodeReport(buf)).toEqual({ ok: true, report: good });
  });

  it('accepts the edges of every range', () => {
    const edge = { ...good, id: 'A'.repeat(64), cpu: 0, mem: 100, io: 100, score: 0, seq: Number.MAX_SAFE_INTEGER, warm: [] };
    expect(decodeReport(encodeReport(edge))).toEqual({ ok: true, report: edge });
  });

  it('ignores unknown fields and does not carry them along', () => {
    const result = decodeReport(json({ ...good, extra: { nested: true }, __proto__x: 1 }));
    expect(result).toEqual({ ok: true, report: good });
  });

  it('drops datagrams over MAX_REPORT_BYTES before parsing them', () => {
    const padded = json({ ...good, pad: 'x'.repeat(MAX_REPORT_BYTES) });
    expect(decodeReport(padded)).toEqual({ ok: false, reason: 'oversized' });
    expect(decodeReport(Buffer.alloc(MAX_REPORT_BYTES + 1, 0x20))).toEqual({ ok: false, reason: 'oversized' });
  });

  it('drops garbage bytes, non-JSON and JSON that is not an object as malformed', () => {
    const bad = [
      Buffer.alloc(0),
      Buffer.from([0xff, 0xfe, 0x00, 0x9c]),
      Buffer.from('{"v":1,"id":"\xff"}', 'latin1'), // not UTF-8
      Buffer.from('not json'),
      Buffer.from('{"v":1,'),
      json(null),
      json([good]),
      json(42),
      json('{"v":1}'),
    ];
    for (const buf of bad) expect(decodeReport(buf)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('drops a report of another version', () => {
    for (const v of [undefined, 0, 2, '1', 1.5]) {
      expect(decodeReport(json({ ...good, v }))).toEqual({ ok: false, reason: 'bad_version' });
    }
  });

  const badValues: Record<ReportField, unknown[]> = {
    id: [undefined, '', 'A'.repeat(65), 'w 1', 'w/1', '../w1', 7],
    pid: [undefined, 0, -1, 1.5, '42', 2 ** 53],
    socket: [undefined, '', '.sock', '/tmp/x.socket', `/${'a'.repeat(200)}.sock`, 5],
    cpu: [undefined, -0.01, 100.01, '5', null],
    mem: [undefined, -1, 101, true],
    io: [undefined, -1, 1000, []],
    score: [undefined, -5, 100.5, {}],
    seq: [undefined, -1, 1.5, 2 ** 53, '3'],
    time: [undefined, 0, -1, '2024-01-01'],
    warm: [undefined, 'GET:/a', [1], [null], Array(MAX_WARM_KEYS + 1).fill('k'), ['x'.repeat(2101)]],
  };

  for (const [field, values] of Object.entries(badValues) as [ReportField, unknown[]][]) {
    it(`drops a bad ${field} as bad_field naming the field`, () => {
      for (const value of values) {
        // validateReport: some bad values cannot fit in a datagram at all
        expect(validateReport({ ...good, [field]: value })).toEqual({ ok: false, reason: 'bad_field', field });
      }
      expect(REPORT_FIELD_RULES[field]).toMatch(/must/);
    });
  }

  it('drops NaN and Infinity, however they are spelled', () => {
    for (const x of [NaN, Infinity, -Infinity]) {
      expect(validateReport({ ...good, score: x })).toMatchObject({ ok: false, field: 'score' });
      expect(validateReport({ ...good, time: x })).toMatchObject({ ok: false, field: 'time' });
    }
    // JSON.stringify writes NaN as null; a hand-written 1e999 parses as Infinity
    expect(decodeReport(encodeReport({ ...good, cpu: NaN }))).toMatchObject({ ok: false, field: 'cpu' });
    const text = JSON.stringify(good).replace('"time":1700000000000', '"time":1e999');
    expect(decodeReport(Buffer.from(text))).toMatchObject({ ok: false, field: 'time' });
  });

  it('lists every drop reason once', () => {
    expect(new Set(DROP_REASONS).size).toBe(DROP_REASONS.length);
    expect(DROP_REASONS).toEqual(expect.arrayContaining(['oversized', 'malformed', 'bad_version', 'bad_field', 'unknown_worker', 'replayed']));
  });
});

describe('fitWarmKeys', () => {
  const { warm: _warm, ...base } = good;

  it('keeps all keys when they fit, in order', () => {
    expect(fitWarmKeys(base, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
  });

  it('caps at MAX_WARM_KEYS and keeps the datagram within MAX_REPORT_BYTES', () => {
    const many = Array.from({ length: 100 }, (_, i) => `GET:/f${i}`);
    expect(fitWarmKeys(base, many)).toEqual(many.slice(0, MAX_WARM_KEYS));
    const long = Array.from({ length: 64 }, (_, i) => `POST:/${'é'.repeat(30)}/${i}`); // 2 bytes per é
    const fitted = fitWarmKeys(base, long);
    expect(fitted.length).toBeGreaterThan(0);
    expect(fitted.length).toBeLessThan(long.length);
    expect(fitted).toEqual(long.slice(0, fitted.length));
    const buf = encodeReport({ ...base, warm: fitted });
    expect(buf.length).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    // one more key would not have fitted
    expect(encodeReport({ ...base, warm: long.slice(0, fitted.length + 1) }).length).toBeGreaterThan(MAX_REPORT_BYTES);
    expect(decodeReport(buf)).toMatchObject({ ok: true });
  });

  it('skips a key too long to send and keeps the smaller ones after it', () => {
    expect(fitWarmKeys(base, ['a', 'x'.repeat(2000), 'y'.repeat(3000), 'b'])).toEqual(['a', 'b']);
  });

  it('fits exactly at the limit, with escapes counted as sent', () => {
    const room = MAX_REPORT_BYTES - encodeReport({ ...base, warm: [] }).length;
    const exact = 'q'.repeat(room - 2); // two quote characters
    expect(fitWarmKeys(base, [exact])).toEqual([exact]);
    expect(fitWarmKeys(base, [`${exact}q`])).toEqual([]);
    expect(fitWarmKeys(base, [`"${exact.slice(1)}`])).toEqual([]); // same length, but \" is two bytes
  });
});
