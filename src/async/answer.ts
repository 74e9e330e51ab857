// An async attempt's answer as the dispatcher keeps it (src/async/dispatcher.ts): the function's
// status and headers, and its body read whole — a streamed one too, acknowledged as it comes —
// of which RESULT_MAX_BYTES are kept and the rest only counted; or, when the invoke was refused,
// its error, and whether the function ever saw the attempt.
import type { InvocationResult } from '../calls.js';
import type { GatewayError } from '../errors.js';
import type { StoredResult } from '../routes/invocation-store.js';

/** The most of a function's answer kept (and sent to a callback); the rest is counted, not kept. */
export const RESULT_MAX_BYTES = 1024 * 1024;

/** Errors that say the call never reached a function. */
const NOT_RUN = new Set(['NO_WORKER_AVAILABLE', 'FUNCTION_AT_CAPACITY']);

/** Why an attempt failed: an error code of the README's table, or one of the async ones (README). */
export interface Failure {
  readonly code: string;
  readonly message: string;
}

/** How an attempt ended: the function's answer (a 5xx one is a failure too), and/or why it failed; `notRun`: no function saw it. */
export interface Outcome {
  readonly result?: StoredResult;
  readonly failure?: Failure;
  readonly notRun?: boolean;
}

/** The function's answer, its body read whole (a streamed one too) and kept up to RESULT_MAX_BYTES. */
export function collect(result: InvocationResult): Outcome | Promise<Outcome> {
  const keep = (body: Buffer, bytes: number): StoredResult => ({ status: result.status, headers: result.headers, body, bytes });
  const stream = result.stream;
  if (!stream) return { result: keep(result.body.subarray(0, RESULT_MAX_BYTES), result.body.length) };
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let kept = 0;
    let bytes = 0;
    stream.consume({
      chunk: (b) => {
        bytes += b.length;
        if (kept < RESULT_MAX_BYTES) {
          const part = b.subarray(0, RESULT_MAX_BYTES - kept);
          parts.push(Buffer.from(part));
          kept += part.length;
        }
        stream.ack(b.length);
      },
      end: (failure) => {
        const stored = keep(Buffer.concat(parts), bytes);
        resolve(failure ? { result: stored, failure: { code: failure.code, message: `the answer was cut short: ${failure.message}` } } : { result: stored });
      },
    });
  });
}

/** An invoke that rejected (with a GatewayError, as fleet.invoke does): its code, else WORKER_PROTOCOL_ERROR; `notRun` when no worker took it. */
export function failed(err: unknown): Outcome {
  const e = err as GatewayError;
  const code = typeof e?.code === 'string' ? e.code : 'WORKER_PROTOCOL_ERROR';
  return { failure: { code, message: e instanceof Error ? e.message : String(err) }, notRun: NOT_RUN.has(code) };
}
