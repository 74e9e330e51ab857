// A streamed body passed along one hop: the function's answer in the worker (instance → invoke
// server) and in the gateway (worker connection → HTTP response). Its producer pushes chunks
// as frames arrive and ends it once; its consumer attaches once, possibly a little later (the
// head that announced the stream resolves a promise, and chunks read in the same socket read
// arrive before the consumer's `then` runs), so what comes before is queued. What flows back
// is flow control: ack(bytes) once the consumer has passed bytes on, cancel() once it cannot.
// Nothing here buffers more than the sender's window (STREAM_WINDOW_BYTES).
import type { EndMessage, WorkerErrorCode } from './messages.js';
import { relayed } from './reclaim.js';

export interface StreamFailure {
  readonly code: WorkerErrorCode;
  readonly message: string;
}

export interface BodySink<T> {
  chunk(bytes: Buffer): void;
  /** Once: `failure` when the stream broke off, `tail` what the producer knows at the end (figures). */
  end(failure: StreamFailure | undefined, tail: T | undefined): void;
}

export interface FlowControl {
  ack(bytes: number): void;
  cancel(): void;
}

export class BodyStream<T = undefined> {
  private queued: Buffer[] = [];
  private sink: BodySink<T> | undefined;
  private ending: { failure: StreamFailure | undefined; tail: T | undefined } | undefined;
  private markFinished!: () => void;
  /** Resolves once the stream has ended, however it ended. */
  readonly finished = new Promise<void>((resolve) => {
    this.markFinished = resolve;
  });
  ended = false;

  constructor(private readonly control: FlowControl) {}

  push(bytes: Buffer): void {
    if (this.ended) return;
    relayed(bytes.length);
    if (this.sink) this.sink.chunk(bytes);
    else this.queued.push(bytes);
  }

  end(failure?: StreamFailure, tail?: T): void {
    if (this.ended) return;
    this.ended = true;
    this.markFinished();
    if (this.sink) this.sink.end(failure, tail);
    else this.ending = { failure, tail };
  }

  /** Attaches the consumer (once) and hands it what came before. */
  consume(sink: BodySink<T>): void {
    if (this.sink) throw new Error('a body stream has one consumer');
    this.sink = sink;
    const queued = this.queued;
    this.queued = [];
    for (const bytes of queued) sink.chunk(bytes);
    if (this.ending) sink.end(this.ending.failure, this.ending.tail);
  }

  ack(bytes: number): void {
    if (!this.ended && bytes > 0) this.control.ack(bytes);
  }

  /** The consumer cannot take more (its client went): the producer should stop. */
  cancel(): void {
    if (!this.ended) this.control.cancel();
  }
}

/** A streamed answer at the gateway: the worker's End message is its tail. */
export type GatewayStream = BodyStream<EndMessage>;

/**
 * A request body the gateway is still reading: replay() hands a sink every chunk so far, then
 * the rest as it comes, then the end (a call refused at capacity is replayed to another worker).
 */
export interface StreamedBody {
  replay(sink: { chunk(bytes: Buffer): void; end(failure?: StreamFailure): void }): void;
}
