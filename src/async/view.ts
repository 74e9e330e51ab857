// An async invocation as JSON: what its status URL (GET /.faas/invocations/ID on the public port)
// and the admin API (GET /api/v1/invocations[/ID]) answer. README "Async invocations" shows it.
import type { InvocationRow } from '../routes/invocation-store.js';

/** `/.faas/invocations/` + id: the status URL's path on the public port. */
export const STATUS_PATH = '/.faas/invocations/';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Flat [name, value, …] as an object; a repeated name gets an array of its values. */
export function headersObject(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    const had = out[name];
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return { ...out };
}

/** The whole view: state, attempts, times, the last error, the function's answer, the callback. */
export function invocationView(row: InvocationRow, withResult = true): Record<string, unknown> {
  const view: Record<string, unknown> = {
    invocationId: row.id,
    status: `${STATUS_PATH}${row.id}`,
    route: row.route,
    state: row.state,
    attempts: row.attempts,
    acceptedAt: iso(row.created),
    ...(row.queuedAt !== row.created && { requeuedAt: iso(row.queuedAt) }),
    ...(row.state === 'queued' && row.nextAt > Date.now() && { nextAttemptAt: iso(row.nextAt) }),
    startedAt: iso(row.started),
    finishedAt: iso(row.finished),
    ...(row.expires !== null && { expiresAt: iso(row.expires) }),
    requestId: row.requestId,
    requestBytes: row.bodyBytes,
    error: row.errorCode === null ? null : { code: row.errorCode, message: row.error },
  };
  if (withResult && row.result) {
    const { status, headers, body, bytes } = row.result;
    const text = isText(body) ? body.toString('utf8') : undefined;
    view.result = {
      status, headers: headersObject(headers),
      body: text ?? body.toString('base64'), isBase64Encoded: text === undefined,
      bytes, truncated: bytes > body.length,
    };
  } else if (row.status !== null) {
    view.result = { status: row.status };
  }
  if (row.callbackUrl !== null) {
    view.callback = { url: row.callbackUrl, state: row.callbackState ?? 'waiting', attempts: row.callbackAttempts, error: row.callbackError };
  }
  return view;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Valid UTF-8 with no NUL: shown as text; anything else as base64. */
function isText(body: Buffer): boolean {
  if (body.includes(0)) return false;
  try {
    UTF8.decode(body);
    return true;
  } catch {
    return false;
  }
}
