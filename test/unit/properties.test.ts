// Property tests (fast-check) for the parsers that read bytes from outside the gateway's own
// code: stream frames from workers, load-report datagrams, route keys from operators' SQL and
// the node host's frame reader. For any input each one either returns a well-formed result or
// refuses it the documented way — it never throws anything else, and a valid input survives
// any split into reads.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../../src/protocol/frames.js';
import { FrameType, type StreamMessage } from '../../src/protocol/messages.js';
import { decodeReport, DROP_REASONS, encodeReport, MAX_REPORT_BYTES } from '../../src/protocol/report.js';
import { METHODS, parseRouteKey } from '../../src/routes/route-key.js';

const RUNS = { numRuns: 300 };

/** Cuts bytes at the given offsets (taken modulo the length), as a socket's reads might. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    parts.push(bytes.subarray(from, c));
    from = c;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

const header = fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 60 }));
const invoke = fc.record({
  id: fc.nat(),
  key: fc.string({ maxLength: 40 }),
  version: fc.nat(),
  requestId: fc.uuid(),
  method: fc.constantFrom(...METHODS),
  path: fc.string({ maxLength: 80 }),
  query: fc.string({ maxLength: 40 }),
  headers: fc.array(header, { maxLength: 8 }).map((pairs) => pairs.flat()),
}).map((m): StreamMessage => ({ t: FrameType.Invoke, ...m }));
const result = fc.record({
  id: fc.nat(),
  status: fc.integer({ min: 100, max: 599 }),
  headers: fc.array(header, { maxLength: 8 }).map((pairs) => pairs.flat()),
  cold: fc.boolean(),
  fnMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
  cpuUs: fc.nat(),
  memPeak: fc.nat(),
}, { requiredKeys: ['id', 'status', 'headers', 'cold', 'fnMs'] }).map((m): StreamMessage => ({ t: FrameType.Result, ...m }));
const frame = fc.tuple(fc.oneof(invoke, result), fc.uint8Array({ maxLength: 2000 }));

describe('FrameDecoder', () => {
  it('gives back every frame, in order, however the stream is cut into reads', () => {
    fc.assert(fc.property(fc.array(frame, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
      const wire = Buffer.concat(frames.flatMap(([m, b]) => encodeFrame(m, Buffer.from(b))));
      const decoder = new FrameDecoder();
      const got = split(wire, cuts).flatMap((part) => decoder.push(part));
      expect(got.map((f) => f.message)).toEqual(frames.map(([m]) => m));
      expect(got.map((f) => [...f.body])).toEqual(frames.map(([, b]) => [...b]));
    }), RUNS);
  });

  it('on arbitrary bytes returns frames or throws FrameError, nothing else', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
      const decoder = new FrameDecoder();
      try {
        for (const c of chunks) {
          for (const f of decoder.push(Buffer.from(c))) {
            expect(typeof f.message.t).toBe('number');
            expect(typeof f.message.id).toBe('number');
          }
        }
      } catch (err) {
        expect(err).toBeInstanceOf(FrameError);
      }
    }), RUNS);
  });

  it('refuses a length over the limit from its header alone, without waiting for the bytes', () => {
    fc.assert(fc.property(fc.integer({ min: MAX_FRAME_BYTES + 1, max: 0xffffffff }), (length) => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(length, 0);
      expect(() => new FrameDecoder().push(head)).toThrow(FrameError);
    }), RUNS);
  });
});

describe('load-report datagrams', () => {
  const report = fc.record({
    v: fc.constant(1 as const),
    id: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
    pid: fc.integer({ min: 1, max: 4_194_304 }),
    socket: fc.stringMatching(/^\/[a-z0-9/]{1,40}$/).map((s) => `${s}.sock`),
    cpu: fc.double({ min: 0, max: 100, noNaN: true }),
    mem: fc.double({ min: 0, max: 100, noNaN: true }),
    io: fc.double({ min: 0, max: 100, noNaN: true }),
    score: fc.double({ min: 0, max: 100, noNaN: true }),
    seq: fc.nat(),
    time: fc.double({ min: 1, max: 4e12, noNaN: true }),
    warm: fc.array(fc.string({ maxLength: 30 }), { maxLength: 10 }),
  });

  it('a valid report decodes to itself', () => {
    fc.assert(fc.property(report, (r) => {
      const decoded = decodeReport(encodeReport(r));
      expect(decoded).toEqual({ ok: true, report: { ...r, cpu: r.cpu + 0, mem: r.mem + 0, io: r.io + 0, score: r.score + 0 } });
    }), RUNS);
  });

  it('any bytes decode to a report or to a documented drop reason, never an exception', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: MAX_REPORT_BYTES + 10 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      report.chain((r) => fc.tuple(fc.constantFrom(...Object.keys(r)), fc.jsonValue()).map(([k, v]) => Buffer.from(JSON.stringify({ ...r, [k]: v })))),
    );
    fc.assert(fc.property(bytes, (buf) => {
      const decoded = decodeReport(buf);
      if (!decoded.ok) expect(DROP_REASONS).toContain(decoded.reason);
      else expect(decoded.report.v).toBe(1);
    }), RUNS);
  });
});

describe('route keys', () => {
  it('any string parses to a method and path that rebuild it, or to an error naming the rule', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom(...METHODS).chain((m) => fc.string().map((p) => `${m}:${p}`))), (k) => {
      const r = parseRouteKey(k);
      if (r.ok) {
        expect(`${r.method}:${r.path}`).toBe(k);
        expect(r.path.startsWith('/')).toBe(true);
        expect(r.path).not.toMatch(/[?#\s]/);
      } else {
        expect(r.error).toMatch(/^functions\.k /);
      }
    }), RUNS);
  });

  it('every METHOD:/path made of URL path characters is accepted', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,20}$/);
    fc.assert(fc.property(fc.constantFrom(...METHODS), fc.array(segment, { minLength: 1, maxLength: 6 }), (method, segs) => {
      const path = `/${segs.join('/')}`;
      expect(parseRouteKey(`${method}:${path}`)).toEqual({ ok: true, method, path });
    }), RUNS);
  });
});

describe("the node host's frame reader", () => {
  interface HostCalls {
    encodeHostFrame(meta: object, body?: Buffer): Buffer[];
    HostFrameReader: new () => { push(chunk: Buffer): Array<{ msg: unknown; body: Buffer }> };
  }
  it('gives back every frame, in order, however the stream is cut into reads', async () => {
    const calls = (await import(new URL('../../workers/runtime/node-calls.mjs', import.meta.url).href)) as HostCalls;
    const meta = fc.record({ t: fc.constant('invoke'), id: fc.nat(), path: fc.string({ maxLength: 50 }), headers: fc.array(fc.string({ maxLength: 20 }), { maxLength: 6 }) });
    fc.assert(fc.property(fc.array(fc.tuple(meta, fc.uint8Array({ maxLength: 3000 })), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
      const wire = Buffer.concat(frames.flatMap(([m, b]) => calls.encodeHostFrame(m, Buffer.from(b))));
      const reader = new calls.HostFrameReader();
      const got = split(wire, cuts).flatMap((part) => reader.push(part));
      expect(got.map((f) => f.msg)).toEqual(frames.map(([m]) => m));
      expect(got.map((f) => [...f.body])).toEqual(frames.map(([, b]) => [...b]));
    }), RUNS);
  });
});
