// Stage: may this request be served at all? Not while the gateway drains, not past
// --max-connections, and not with framing uWS let through but we cannot trust.
//
// uWS itself refuses, without an answer, a request it cannot parse — both Content-Length and
// Transfer-Encoding, a Transfer-Encoding other than chunked, more than 100 headers, garbage —
// reads nothing more from that connection and closes it at its idle timeout (10 s). What it lets
// through is checked here.
import { GatewayError } from '../../errors.js';
import type { Call } from './call.js';

export function admit(c: Call): boolean {
  if (c.deps.draining()) {
    c.refuseEarly(new GatewayError('SHUTTING_DOWN', 'the gateway is shutting down; retry on a new connection'), undefined, true);
    return false;
  }
  const excess = c.deps.excessConnections();
  if (excess > 0) {
    c.refuseEarly(new GatewayError('TOO_MANY_CONNECTIONS', `the gateway has ${excess} client connections more than its limit (--max-connections)`), undefined, true);
    return false;
  }
  if (c.conflictingLength) {
    c.fail(new GatewayError('BAD_REQUEST', 'content-length is given twice with different values'), undefined, true);
    return false;
  }
  if (c.headerBytes > c.deps.maxHeaderBytes) {
    // Closed after, as Node does: uWS serves nothing more on a connection after such a request.
    c.fail(new GatewayError('HEADERS_TOO_LARGE', `the request line and headers are ${c.headerBytes} bytes, over the limit of ${c.deps.maxHeaderBytes} bytes`), undefined, true);
    return false;
  }
  return true;
}
