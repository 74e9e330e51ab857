// How the gateway ends its answers, beside server.ts: the headers every answer carries (Server,
// CORS's), a HEAD request's answer (headers and length, no body), a preflight's 204.
import { headerOf, type Headers } from './cors.js';
import type { HttpResponse } from './uws.js';

/** What every answer carries besides its own headers: the Server header (--server-header) and, on a route with cors, CORS's. */
export function writeGatewayHeaders(res: HttpResponse, server: string | undefined, cors: Headers | undefined): void {
  if (server !== undefined) res.writeHeader('server', server);
  if (cors) for (const [k, v] of cors) res.writeHeader(k, v);
}

/**
 * Ends an answer. A HEAD request's goes without its body, with the content-length its GET would
 * have had. That length is written by hand: in this build of uWS endWithoutBody(length) never
 * marks the answer done (the connection's next request is dropped), and its close flag needs a
 * length, so a HEAD answer that should close asks the client to with `connection: close`.
 * test/integration/uws-head.test.ts pins that uWS behaviour: when it fails after an upgrade, this
 * can go back to endWithoutBody(length, close).
 */
export function endAnswer(res: HttpResponse, body: string | Buffer, head: boolean, close = false, length = Buffer.byteLength(body)): void {
  if (!head) {
    res.end(body, close);
    return;
  }
  res.writeHeader('content-length', String(length));
  if (close) res.writeHeader('connection', 'close');
  res.endWithoutBody();
}

/** A HEAD answer's length: its body's, or, from a function that skipped the body for HEAD, the content-length it gave. */
export function headLength(body: Buffer, headers: readonly string[]): number {
  const given = body.length === 0 ? headerOf(headers, 'content-length') : undefined;
  return given !== undefined && /^\d{1,15}$/.test(given) ? Number(given) : body.length;
}

/** A preflight's answer (cors.ts): 204, no body, no content-length (RFC 9110 §8.6: none on a 204). */
export function answerPreflight(res: HttpResponse, headers: Headers, requestId: string, server: string | undefined): void {
  res.cork(() => {
    res.writeStatus('204 No Content');
    res.writeHeader('x-request-id', requestId);
    writeGatewayHeaders(res, server, headers);
    res.endWithoutBody();
  });
}
