// Length-prefixed frames on the gateway ⇄ worker Unix stream socket.
//
//   u32 BE  frameBytes   (everything after this field)
//   u32 BE  envelopeBytes
//   ...     envelope     msgpackr-encoded StreamMessage
//   ...     body         raw bytes, never re-encoded (PERF.md: the body travels beside
//                        the envelope, so a 64 KiB body costs one copy into the socket)
//
// Many calls are in flight on one connection at once, told apart by the envelope's `id`.
// Writes are coalesced: every frame queued during one event-loop turn goes out in one
// corked write (BatchWriter; PERF.md measured ~1.4× for batching over one write per frame).
import type { Writable } from 'node:stream';
import { Packr } from 'msgpackr';
import type { StreamMessage } from './messages.js';

export const FRAME_HEADER_BYTES = 8;
/** Upper bound on one frame: 6 MiB body limit + envelope headroom. Larger is a protocol error. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface Frame {
  readonly message: StreamMessage;
  readonly body: Buffer;
}

export class FrameError extends Error {
  readonly code = 'WORKER_PROTOCOL_ERROR';
}

const EMPTY = Buffer.alloc(0);

/** Encodes one frame as [header+envelope, body] so the body is never copied here. */
export function encodeFrame(message: StreamMessage, body: Buffer = EMPTY): [Buffer, Buffer] {
  const envelope = packr.pack(message);
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + envelope.length);
  head.writeUInt32BE(4 + envelope.length + body.length, 0);
  head.writeUInt32BE(envelope.length, 4);
  envelope.copy(head, FRAME_HEADER_BYTES);
  return [head, body];
}

/**
 * Bytes read from a stream, kept as the chunks they came in: a frame is copied out once, when
 * it is whole (a 6 MiB body arriving in 64 KiB reads is not re-concatenated per read).
 */
export class ChunkQueue {
  private chunks: Buffer[] = [];
  buffered = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The first n bytes without consuming them (at least n bytes long), or undefined if fewer are buffered. */
  peek(n: number): Buffer | undefined {
    if (this.buffered < n) return undefined;
    if (this.chunks[0]!.length < n) {
      const head = this.take(n); // joins just the first n bytes
      this.chunks.unshift(head);
      this.buffered += n;
    }
    return this.chunks[0];
  }

  /** Removes and returns the first n bytes (n ≤ buffered): a view of one chunk, or one copy. */
  take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const need = n - at;
      if (c.length <= need) {
        c.copy(out, at);
        at += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, at, 0, need);
        this.chunks[0] = c.subarray(need);
        at = n;
      }
    }
    return out;
  }
}

/**
 * Reassembles frames from stream chunks. Call push() with each chunk; it returns the complete
 * frames in order and keeps the remainder. Throws FrameError on a frame that cannot be valid;
 * the connection must then be closed, since the stream has lost its framing.
 */
export class FrameDecoder {
  private readonly queue = new ChunkQueue();

  push(chunk: Buffer): Frame[] {
    this.queue.push(chunk);
    const frames: Frame[] = [];
    for (;;) {
      const head = this.queue.peek(FRAME_HEADER_BYTES);
      if (!head) break;
      const frameBytes = head.readUInt32BE(0);
      if (frameBytes < 4 || frameBytes > MAX_FRAME_BYTES) {
        throw new FrameError(`frame length ${frameBytes} is outside 4..${MAX_FRAME_BYTES}`);
      }
      const envelopeBytes = head.readUInt32BE(4);
      if (envelopeBytes > frameBytes - 4) {
        throw new FrameError(`envelope length ${envelopeBytes} exceeds frame length ${frameBytes}`);
      }
      if (this.queue.buffered < 4 + frameBytes) break;
      const whole = this.queue.take(4 + frameBytes);
      const envelopeEnd = FRAME_HEADER_BYTES + envelopeBytes;
      let message: unknown;
      try {
        message = packr.unpack(whole.subarray(FRAME_HEADER_BYTES, envelopeEnd));
      } catch (err) {
        throw new FrameError(`envelope is not valid msgpack: ${(err as Error).message}`);
      }
      if (typeof message !== 'object' || message === null || typeof (message as { t?: unknown }).t !== 'number'
        || typeof (message as { id?: unknown }).id !== 'number') {
        throw new FrameError('envelope must be an object with numeric t and id');
      }
      frames.push({ message: message as StreamMessage, body: whole.subarray(envelopeEnd) });
    }
    return frames;
  }
}

/**
 * Buffers queued past which a BatchWriter writes at once rather than at the end of the turn. A
 * turn in which the gateway reads 64 requests would otherwise hand the instance all 64 calls only
 * after the last one is read, and the two processes would take turns instead of working side by
 * side: with 16, 1.3–1.4× the calls a second at 64 connections (README "Against workerd").
 */
const FLUSH_AT_BUFFERS = 16;

/**
 * Queues buffers and writes everything queued during one event-loop turn as one corked write
 * (one writev), or sooner once FLUSH_AT_BUFFERS are queued: under load many frames are queued per
 * turn, and a syscall per frame would cost more than the frames themselves. Bound to a stream
 * that may not be connected yet: what is queued before then is written once it is.
 */
export class BatchWriter {
  private queue: Buffer[] = [];
  private scheduled = false;
  private stream?: Writable;

  constructor(stream?: Writable) {
    this.stream = stream;
  }

  /** Sets the stream once it exists (a container's channel connects after start). */
  attach(stream: Writable): void {
    this.stream = stream;
    if (this.queue.length > 0) this.schedule();
  }

  write(...bufs: Buffer[]): void {
    for (const b of bufs) if (b.length > 0) this.queue.push(b);
    if (this.queue.length >= FLUSH_AT_BUFFERS) this.writeOut();
    else this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || !this.stream) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    this.writeOut();
  };

  private writeOut(): void {
    const stream = this.stream;
    if (!stream || stream.destroyed || this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    stream.cork();
    for (const buf of queue) stream.write(buf);
    stream.uncork();
  }
}

/** Encodes StreamMessages as frames onto a BatchWriter. */
export class FrameWriter {
  private readonly out: BatchWriter;

  constructor(socket: Writable) {
    this.out = new BatchWriter(socket);
  }

  send(message: StreamMessage, body?: Buffer): void {
    const [head, rest] = encodeFrame(message, body);
    this.out.write(head, rest);
  }
}
