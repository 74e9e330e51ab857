// A request body the gateway is still reading, passed on as it arrives: the call goes to a
// worker at the body's first chunk, so the function may start (and a cold instance boot) while
// the client is still sending. Chunks are kept until the call is done: a call a worker refuses
// at capacity is replayed to the next one. What is kept is bounded by --max-body-bytes, as the
// buffered body was.
import type { StreamFailure, StreamedBody } from '../protocol/body-stream.js';

type Sink = Parameters<StreamedBody['replay']>[0];

export class RequestBody implements StreamedBody {
  private readonly chunks: Buffer[] = [];
  private readonly sinks: Sink[] = [];
  private ending: { failure: StreamFailure | undefined } | undefined;

  push(bytes: Buffer): void {
    if (this.ending) return;
    this.chunks.push(bytes);
    for (const sink of this.sinks) sink.chunk(bytes);
  }

  /** Once: the whole body is in, or (`failure`) it never will be. */
  end(failure?: StreamFailure): void {
    if (this.ending) return;
    this.ending = { failure };
    for (const sink of this.sinks) sink.end(failure);
  }

  replay(sink: Sink): void {
    for (const bytes of this.chunks) sink.chunk(bytes);
    if (this.ending) sink.end(this.ending.failure);
    else this.sinks.push(sink);
  }
}
