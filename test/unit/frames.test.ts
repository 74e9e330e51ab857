import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { BatchWriter, ChunkQueue, encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../../src/protocol/frames.js';
import { FrameType, type InvokeMessage } from '../../src/protocol/messages.js';

const invoke: InvokeMessage = {
  t: FrameType.Invoke, id: 7, key: 'POST:/x', version: 3, requestId: 'r1', method: 'POST', path: '/x', query: 'a=1',
  headers: ['content-type', 'text/plain'],
};

function bytes(message = invoke, body = Buffer.from('hello')): Buffer {
  return Buffer.concat(encodeFrame(message, body));
}

describe('frames', () => {
  it('round-trips an envelope and a raw body', () => {
    const [frame] = new FrameDecoder().push(bytes());
    expect(frame!.message).toEqual(invoke);
    expect(frame!.body.toString()).toBe('hello');
  });

  it('reassembles frames split at every byte and several frames in one chunk', () => {
    const one = bytes();
    const two = bytes({ ...invoke, id: 8 }, Buffer.alloc(0));
    const all = Buffer.concat([one, two, one]);
    const d = new FrameDecoder();
    const got = [];
    for (let i = 0; i < all.length; i++) got.push(...d.push(all.subarray(i, i + 1)));
    expect(got.map((f) => f.message.id)).toEqual([7, 8, 7]);
    expect(got[1]!.body.length).toBe(0);
    expect(new FrameDecoder().push(all).length).toBe(3);
  });

  it('keeps a 64 KiB body intact', () => {
    const body = Buffer.alloc(65536, 0xab);
    const [frame] = new FrameDecoder().push(bytes(invoke, body));
    expect(frame!.body.equals(body)).toBe(true);
  });

  it('refuses an impossible length, a bad envelope length and garbage envelopes', () => {
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    expect(() => new FrameDecoder().push(huge)).toThrow(FrameError);
    const bad = Buffer.alloc(12);
    bad.writeUInt32BE(8, 0);
    bad.writeUInt32BE(100, 4);
    expect(() => new FrameDecoder().push(bad)).toThrow(/envelope length 100 exceeds/);
    const notObject = Buffer.alloc(9);
    notObject.writeUInt32BE(5, 0);
    notObject.writeUInt32BE(1, 4);
    notObject[8] = 0x2a; // msgpack fixint 42
    expect(() => new FrameDecoder().push(notObject)).toThrow(/numeric t and id/);
  });
});

describe('ChunkQueue', () => {
  it('hands out a frame split over many chunks as one copy, and the rest intact', () => {
    const q = new ChunkQueue();
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    for (let i = 0; i < data.length; i += 7) q.push(data.subarray(i, i + 7));
    expect(q.peek(10)).toEqual(expect.any(Buffer));
    expect(q.peek(10)!.subarray(0, 10)).toEqual(data.subarray(0, 10));
    expect(q.buffered).toBe(1000);
    expect(q.take(600)).toEqual(data.subarray(0, 600));
    expect(q.take(3)).toEqual(data.subarray(600, 603));
    expect(q.buffered).toBe(397);
    expect(q.take(397)).toEqual(data.subarray(603));
    expect(q.peek(1)).toBeUndefined();
  });
});

describe('BatchWriter', () => {
  /** A stream that records each write it gets: a corked batch comes as one writev. */
  function recorder() {
    const writes: string[][] = [];
    const stream = new Writable({
      writev(chunks, done) { writes.push(chunks.map((c) => String(c.chunk))); done(); },
      write(chunk, _enc, done) { writes.push([String(chunk)]); done(); },
    });
    return { stream, writes };
  }

  it('writes one turn\'s buffers together at the end of the turn', async () => {
    const { stream, writes } = recorder();
    const out = new BatchWriter(stream);
    for (let i = 0; i < 5; i++) out.write(Buffer.from(`f${i}`));
    expect(writes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([['f0', 'f1', 'f2', 'f3', 'f4']]);
  });

  it('writes at once when many are queued, so that the reader starts on them, and keeps the order', async () => {
    const { stream, writes } = recorder();
    const out = new BatchWriter(stream);
    const sent = Array.from({ length: 40 }, (_, i) => `f${i}`);
    for (const f of sent) out.write(Buffer.from(f));
    expect(writes.length).toBe(2); // 16 and 16 went out within the turn
    expect(writes[0]!.length).toBe(16);
    await new Promise((r) => setImmediate(r));
    expect(writes.length).toBe(3);
    expect(writes.flat()).toEqual(sent);
  });

  it('holds what is written before its stream exists, and writes it once attached', async () => {
    const { stream, writes } = recorder();
    const out = new BatchWriter();
    for (let i = 0; i < 20; i++) out.write(Buffer.from(`f${i}`));
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]);
    out.attach(stream);
    await new Promise((r) => setImmediate(r));
    expect(writes.flat()).toEqual(Array.from({ length: 20 }, (_, i) => `f${i}`));
  });
});
