// W3C Trace Context for each call, and the server-timing figures' format.
import { randomBytes, randomUUID } from 'node:crypto';

/** version-traceid-parentid-flags; later versions may append fields. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** µs as server-timing's milliseconds, to the µs: 1234 → "1.234". */
export function cpuTiming(us: number): string {
  return (us / 1000).toFixed(3);
}

/**
 * The trace this request belongs to and the traceparent the function gets: a new span id under
 * the client's trace id and flags, or a new trace (from the request's own random id when there
 * is one) when the client sent no valid traceparent. An invalid one is replaced, as the spec asks.
 */
export function traceContext(header: string | undefined, uuid: string | undefined): { traceId: string; child: string } {
  const m = header !== undefined ? TRACEPARENT.exec(header) : null;
  const valid = m !== null && m[1] !== 'ff' && !(m[1] === '00' && m[5] !== undefined) && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!);
  const traceId = valid ? m[2]! : hex32(uuid ?? randomUUID());
  const flags = valid ? m[4]! : '00'; // a trace started here is not recorded: no sampled flag
  return { traceId, child: `00-${traceId}-${spanId()}-${flags}` };
}

/** A UUID's 32 hex digits (a regex replace costs twice as much). */
function hex32(uuid: string): string {
  return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(14, 18) + uuid.slice(19, 23) + uuid.slice(24);
}

/** Random bytes for span ids, drawn 4 KiB at a time: one crypto call per 512 requests. */
let spanPool = Buffer.alloc(0);
let spanAt = 0;

function spanId(): string {
  if (spanAt + 8 > spanPool.length) {
    spanPool = randomBytes(4096);
    spanAt = 0;
  }
  const id = spanPool.toString('hex', spanAt, spanAt + 8);
  spanAt += 8;
  return id === '0000000000000000' ? spanId() : id; // all zeros is not a valid span id
}
