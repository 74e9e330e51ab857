// Stage: the call counts against --max-in-flight from here, until it is answered or its client
// has gone; and a body it declares must be one we would read.
import { GatewayError } from '../../errors.js';
import type { Call } from './call.js';

export function count(c: Call): boolean {
  if (c.calls.inFlight >= c.deps.maxInFlight) {
    c.refuseEarly(new GatewayError('OVERLOADED', `the gateway has ${c.calls.inFlight} calls in flight, its limit (--max-in-flight)`));
    return false;
  }
  c.count();
  const length = c.contentLength;
  const declared = length === undefined ? undefined : Number(length);
  if (length !== undefined && (!/^\d+$/.test(length) || !Number.isSafeInteger(declared))) {
    c.fail(new GatewayError('BAD_REQUEST', `content-length must be a non-negative integer (got ${JSON.stringify(length)})`), undefined, true);
    return false;
  }
  if (declared !== undefined && declared > c.deps.maxBodyBytes) {
    c.refuseEarly(new GatewayError('PAYLOAD_TOO_LARGE', `request body of ${declared} bytes is over the limit of ${c.deps.maxBodyBytes} bytes`));
    return false;
  }
  c.declared = declared;
  return true;
}
