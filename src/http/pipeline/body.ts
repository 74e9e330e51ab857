// Stage: the body, then the call (invoke.ts). A body that arrives in one read is handed on whole
// (the common case: one frame to the worker); a longer one piece by piece as it comes
// (request-body.ts), the call starting with the first. Counting as it goes, an over-limit body is
// refused as soon as it crosses the limit, and the rest read and dropped so the client can read
// the 413.
//
// A client that sends its body too slowly (or not at all) is answered 408 before uWS's own 10 s
// timeout would close it without a word (the server's sweep, --body-timeout-ms). The connection
// is not closed at once: a client still writing would get a reset, and with it lose the answer;
// the rest of the body is read and dropped until uWS's timeout closes it (nginx's lingering close).
import { GatewayError } from '../../errors.js';
import { RequestBody } from '../request-body.js';
import type { Call, Reading } from './call.js';
import { invoke } from './invoke.js';

const EMPTY = Buffer.alloc(0);
const CLOSING: ReadonlyArray<readonly [string, string]> = [['connection', 'close']];

export function receive(c: Call): boolean {
  if (c.declared === undefined && !c.chunked) {
    invoke(c, EMPTY);
    return false;
  }
  const { deps, calls } = c;
  let finished = false;
  const reading: Reading = {
    deadline: c.started + deps.bodyTimeoutMs,
    expire: () => {
      if (finished) return;
      finished = true;
      c.fail(new GatewayError('REQUEST_TIMEOUT', `the request body did not arrive within ${deps.bodyTimeoutMs} ms (--body-timeout-ms)`), CLOSING);
      c.bodyIn?.end({ code: 'FUNCTION_ERROR', message: `the request body did not arrive within ${deps.bodyTimeoutMs} ms` });
    },
  };
  calls.reading.add(reading);
  const settle = (): boolean => {
    calls.reading.delete(reading);
    if (finished) return false;
    finished = true;
    return true;
  };
  c.bodyRead = reading;
  let received = 0;
  let refused = false;
  c.res.onData((chunk, isLast) => {
    if (refused || c.state.aborted) return;
    if (chunk.byteLength === 0 && !isLast) return; // uWS's first call may come before any byte of the body
    if (received + chunk.byteLength > deps.maxBodyBytes) {
      refused = true;
      if (!settle()) return;
      c.bodyIn?.end({ code: 'FUNCTION_ERROR', message: `the request body is over the limit of ${deps.maxBodyBytes} bytes` });
      c.fail(new GatewayError('PAYLOAD_TOO_LARGE', `request body is over the limit of ${deps.maxBodyBytes} bytes`));
      return;
    }
    // uWS reuses each chunk's memory after the callback returns: copied.
    const bytes = Buffer.from(new Uint8Array(chunk));
    received += bytes.length;
    if (c.bodyIn) {
      c.bodyIn.push(bytes);
      if (isLast && settle()) c.bodyIn.end();
    } else if (isLast) {
      if (settle()) invoke(c, bytes);
    } else {
      c.bodyIn = new RequestBody();
      c.bodyIn.push(bytes);
      invoke(c, EMPTY, c.bodyIn);
    }
  });
  return false;
}
