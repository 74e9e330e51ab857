// The load report a worker sends the gateway every report period: one JSON datagram on the
// gateway's metrics socket (a Unix datagram socket, so there is no stream to resync and no
// connection to keep). JSON because it is ~250 bytes twice a second per worker: readable with
// `socat` beats saving microseconds here.
//
// The gateway trusts nothing it receives: decodeReport checks size first, then that the bytes
// are UTF-8 JSON of an object, then every field. Whatever fails is dropped and counted by
// reason, so a broken or hostile sender can never feed NaN, a negative score or a megabyte of
// warm keys into the scheduler. Unknown extra fields are ignored (and not carried along), so a
// newer worker can add fields without breaking an older gateway; incompatible changes bump `v`.
//
// The same rules check a worker's own settings when its reporter starts (validateReport), so a
// worker that could only send reports the gateway would drop fails at start instead.
import type { WorkerReport } from './messages.js';

/** Largest datagram the gateway accepts; the reporter fits its warm list under it. */
export const MAX_REPORT_BYTES = 2048;
export const MAX_WARM_KEYS = 64;
export const MAX_WARM_KEY_CHARS = 2100;
export const MAX_SOCKET_PATH_CHARS = 200;
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Why the gateway dropped a datagram. The last two are decided after decoding. */
export type DropReason =
  | 'oversized'
  | 'malformed'
  | 'bad_version'
  | 'bad_field'
  | 'unknown_worker'
  | 'replayed';

export const DROP_REASONS: readonly DropReason[] = [
  'oversized',
  'malformed',
  'bad_version',
  'bad_field',
  'unknown_worker',
  'replayed',
];

export type ReportField = Exclude<keyof WorkerReport, 'v'>;

/** Each field's rule, in words, for logs and start-up errors. */
export const REPORT_FIELD_RULES: Readonly<Record<ReportField, string>> = {
  id: 'must match /^[A-Za-z0-9_.-]{1,64}$/',
  pid: 'must be a positive integer',
  socket: `must be a path ending in .sock, 1 to ${MAX_SOCKET_PATH_CHARS} characters`,
  cpu: 'must be a number from 0 to 100',
  mem: 'must be a number from 0 to 100',
  io: 'must be a number from 0 to 100',
  score: 'must be a number from 0 to 100',
  seq: 'must be a non-negative safe integer',
  time: 'must be a positive finite number (ms since the epoch)',
  warm: `must be an array of at most ${MAX_WARM_KEYS} strings of at most ${MAX_WARM_KEY_CHARS} characters`,
};

export type DecodeResult =
  | { readonly ok: true; readonly report: WorkerReport }
  | { readonly ok: false; readonly reason: DropReason; readonly field?: ReportField };

export function encodeReport(report: WorkerReport): Buffer {
  return Buffer.from(JSON.stringify(report), 'utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeReport(buf: Buffer): DecodeResult {
  if (buf.length > MAX_REPORT_BYTES) return { ok: false, reason: 'oversized' };
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(buf));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  return validateReport(value);
}

const isPercent = (x: unknown): boolean => typeof x === 'number' && x >= 0 && x <= 100;

const CHECKS: Readonly<Record<ReportField, (x: unknown) => boolean>> = {
  id: (x) => typeof x === 'string' && ID_PATTERN.test(x),
  pid: (x) => Number.isSafeInteger(x) && (x as number) > 0,
  socket: (x) =>
    typeof x === 'string' && x.length <= MAX_SOCKET_PATH_CHARS && x.length > '.sock'.length && x.endsWith('.sock'),
  cpu: isPercent,
  mem: isPercent,
  io: isPercent,
  score: isPercent,
  seq: (x) => Number.isSafeInteger(x) && (x as number) >= 0,
  time: (x) => typeof x === 'number' && x > 0 && Number.isFinite(x),
  warm: (x) =>
    Array.isArray(x) &&
    x.length <= MAX_WARM_KEYS &&
    x.every((k) => typeof k === 'string' && k.length <= MAX_WARM_KEY_CHARS),
};

const FIELDS = Object.keys(CHECKS) as ReportField[];

/** Checks an already-parsed value; returns a fresh report holding only the known fields. */
export function validateReport(value: unknown): DecodeResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'malformed' };
  }
  const o = value as Record<string, unknown>;
  if (o.v !== 1) return { ok: false, reason: 'bad_version' };
  for (const field of FIELDS) {
    if (!CHECKS[field](o[field])) return { ok: false, reason: 'bad_field', field };
  }
  const report: WorkerReport = {
    v: 1,
    id: o.id as string,
    pid: o.pid as number,
    socket: o.socket as string,
    cpu: o.cpu as number,
    mem: o.mem as number,
    io: o.io as number,
    score: o.score as number,
    seq: o.seq as number,
    time: o.time as number,
    warm: [...(o.warm as string[])],
  };
  return { ok: true, report };
}

/**
 * The warm list to send: `keys` in their order (most important first), at most MAX_WARM_KEYS,
 * skipping any key that is over MAX_WARM_KEY_CHARS or would push the encoded report past
 * MAX_REPORT_BYTES.
 */
export function fitWarmKeys(report: Omit<WorkerReport, 'warm'>, keys: readonly string[]): string[] {
  let bytes = Buffer.byteLength(JSON.stringify({ ...report, warm: [] }), 'utf8');
  const fitted: string[] = [];
  for (const key of keys) {
    if (fitted.length === MAX_WARM_KEYS) break;
    if (key.length > MAX_WARM_KEY_CHARS) continue;
    const cost = Buffer.byteLength(JSON.stringify(key), 'utf8') + (fitted.length > 0 ? 1 : 0);
    if (bytes + cost > MAX_REPORT_BYTES) continue;
    bytes += cost;
    fitted.push(key);
  }
  return fitted;
}
