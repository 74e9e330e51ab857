// Writes a streamed answer to its client as the function produces it: each chunk as soon as it
// arrives (chunked transfer encoding: no content-length is known), acknowledged to the worker
// once uWS has taken it, or, when the socket is full, once uWS says it is writable again, so a
// client that stops reading stops the function's stream (STREAM_WINDOW_BYTES bound what waits
// on the way). A stream that breaks off after the status went out can only be cut: the
// connection is closed without the final chunk, which every HTTP client reports as an error.
import type { GatewayStream, StreamFailure } from '../protocol/body-stream.js';
import type { EndMessage } from '../protocol/messages.js';
import type { HttpResponse } from './uws.js';

export interface StreamState {
  aborted: boolean;
  /** Set here: what the request's onAborted calls, to stop the function's stream. */
  cancel?: () => void;
}

/**
 * Call with the status and headers written (inside their cork). `done` gets the worker's End
 * (its figures) and, when it broke off, why.
 */
export function streamAnswer(res: HttpResponse, stream: GatewayStream, state: StreamState, bodyless: boolean,
  done: (tail: EndMessage | undefined, failure: StreamFailure | undefined) => void): void {
  state.cancel = () => stream.cancel();
  if (bodyless) {
    // HEAD: the headers are the answer; the function's bytes are not wanted.
    res.endWithoutBody();
    stream.cancel();
    stream.consume({ chunk: () => {}, end: (failure, tail) => done(tail, failure) });
    return;
  }
  /** Bytes written while uWS held some back: acknowledged once it can write again. */
  let held = 0;
  res.onWritable(() => {
    if (held > 0) stream.ack(held);
    held = 0;
    return true;
  });
  stream.consume({
    chunk: (bytes) => {
      if (state.aborted) return;
      let written = false;
      res.cork(() => {
        written = res.write(bytes);
      });
      if (written && held === 0) stream.ack(bytes.length);
      else held += bytes.length;
    },
    end: (failure, tail) => {
      if (failure) {
        // Closed on the next turn: the end may come inside the cork that wrote the head and the
        // last chunks, and a close there would drop them unsent.
        setImmediate(() => {
          if (!state.aborted) res.close();
        });
      } else if (!state.aborted) res.cork(() => res.end());
      done(tail, failure);
    },
  });
}
