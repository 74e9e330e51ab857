// X-Callback-Url (README "Async invocations"): where a finished async invocation's answer is
// POSTed, as OpenFaaS's queue-worker does: the function's body as the body, its status in
// X-Function-Status, the invocation's id in X-Call-Id. Checked when the call is accepted (http or
// https, not the gateway's own ports on this host: a callback into the gateway would be a call
// the caller could not make directly, or a loop); delivered at least once, with retries, after
// the invocation's finish is on disk; its state is kept in the invocation.
import os from 'node:os';
import { ERRORS, reasonPhrase } from '../errors.js';
import type { Log } from '../protocol/log.js';
import type { CallbackState, InvocationRow } from '../routes/invocation-store.js';

export const CALLBACK_URL_MAX_CHARS = 2048;
/** Tries per callback: the first and three retries, 1, 2 and 4 s apart. */
export const CALLBACK_ATTEMPTS = 4;
const CALLBACK_BACKOFF_MS = 1000;
const CALLBACK_TIMEOUT_MS = 10_000;
/** Callbacks being delivered at once; the rest wait their turn. */
const CALLBACKS_IN_FLIGHT = 16;

/**
 * Why `raw` cannot be a callback URL, or undefined when it can. `ownPorts` are the gateway's
 * public and admin ports: refused on any address of this host (loopback, its interfaces, its
 * name), since the gateway listens on all of them for the public port.
 */
export function callbackUrlProblem(raw: string, ownPorts: readonly number[]): string | undefined {
  if (raw.length > CALLBACK_URL_MAX_CHARS) return `X-Callback-Url must be at most ${CALLBACK_URL_MAX_CHARS} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `X-Callback-Url must be an absolute http:// or https:// URL (got ${JSON.stringify(raw.slice(0, 200))})`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `X-Callback-Url must be an http:// or https:// URL (got the scheme ${JSON.stringify(url.protocol.slice(0, -1))})`;
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (ownPorts.includes(port) && isThisHost(url.hostname)) {
    return `X-Callback-Url must not point at the gateway itself (${url.hostname}:${port} is its own port)`;
  }
  return undefined;
}

/** Loopback, unspecified, or one of this machine's addresses or names. */
export function isThisHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host === os.hostname().toLowerCase()) return true;
  if (/^127\.\d+\.\d+\.\d+$/.test(host) || host === '0.0.0.0' || host === '::' || host === '::1') return true;
  const mapped = /^::ffff:(.+)$/.exec(host)?.[1];
  if (mapped !== undefined) return isThisHost(mapped) || /^7f[0-9a-f]{2}:/.test(mapped);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.address.toLowerCase() === host) return true;
  }
  return false;
}

export interface CallbackDeps {
  /** The invocation, as stored (its finish is committed before a callback is sent). */
  readonly read: (id: string) => InvocationRow | undefined;
  /** Records the outcome (a write in the dispatcher's next commit). */
  readonly record: (id: string, state: CallbackState, attempts: number, error: string | undefined) => void;
  readonly log: Log;
  readonly fetch?: typeof fetch;
}

/** Delivers callbacks, CALLBACKS_IN_FLIGHT at a time, each up to CALLBACK_ATTEMPTS times. */
export class CallbackSender {
  private readonly waiting: string[] = [];
  private readonly queued = new Set<string>();
  private inFlight = 0;
  private stopped = false;
  delivered = 0;
  failed = 0;

  constructor(private readonly deps: CallbackDeps) {}

  /** An invocation that finished: sends its callback if it has one pending. */
  send(id: string): void {
    if (this.queued.has(id) || this.stopped) return;
    this.queued.add(id);
    this.waiting.push(id);
    this.next();
  }

  stop(): void {
    this.stopped = true;
  }

  private next(): void {
    while (this.inFlight < CALLBACKS_IN_FLIGHT && this.waiting.length > 0 && !this.stopped) {
      const id = this.waiting.shift()!;
      const row = this.deps.read(id);
      if (!row || row.callbackState !== 'pending' || row.callbackUrl === null) {
        this.queued.delete(id);
        continue;
      }
      this.inFlight++;
      void this.deliver(row).finally(() => {
        this.inFlight--;
        this.queued.delete(id);
        this.next();
      });
    }
  }

  private async deliver(row: InvocationRow): Promise<void> {
    const url = row.callbackUrl!;
    const request = callbackRequest(row);
    let error = '';
    for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS; attempt++) {
      if (this.stopped) return; // still pending on disk: sent again after the restart
      try {
        const res = await (this.deps.fetch ?? fetch)(url, {
          method: 'POST', headers: request.headers, body: request.body, redirect: 'manual', signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) {
          this.delivered++;
          this.deps.record(row.id, 'delivered', attempt, undefined);
          this.deps.log({ msg: 'async callback delivered', invocation: row.id, route: row.route, url, attempt, status: res.status });
          return;
        }
        error = `the callback URL answered ${res.status}`;
      } catch (err) {
        error = `the callback could not be sent: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`;
      }
      this.deps.log({ level: 'warn', msg: 'async callback failed', invocation: row.id, route: row.route, url, attempt, error });
      if (attempt < CALLBACK_ATTEMPTS) await sleep(CALLBACK_BACKOFF_MS * 2 ** (attempt - 1));
    }
    this.failed++;
    this.deps.record(row.id, 'failed', CALLBACK_ATTEMPTS, error);
  }
}

/**
 * What a callback carries: the function's body and content-type, its status in X-Function-Status;
 * for an invocation that failed without an answer, the gateway's error JSON and its status.
 */
export function callbackRequest(row: InvocationRow): { headers: Record<string, string>; body: Buffer } {
  const headers: Record<string, string> = {
    'x-call-id': row.id,
    'x-faas-invocation-id': row.id,
    'x-function-name': row.route,
    'x-faas-state': row.state,
    'x-faas-attempts': String(row.attempts),
  };
  const result = row.result;
  if (row.errorCode !== null && row.state === 'failed') headers['x-faas-error-code'] = row.errorCode;
  if (result) {
    headers['x-function-status'] = String(result.status);
    const h = result.headers;
    for (let i = 0; i + 1 < h.length; i += 2) if (h[i] === 'content-type') headers['content-type'] = h[i + 1]!;
    return { headers, body: result.body };
  }
  const status = errorStatus(row.errorCode);
  headers['x-function-status'] = String(status);
  headers['content-type'] = 'application/json';
  return { headers, body: Buffer.from(JSON.stringify({ statusCode: status, code: row.errorCode, error: reasonPhrase(status), message: row.error })) };
}

/** The HTTP status of a failure without an answer: its error code's (README, Errors), else 500 (EXPIRED, GATEWAY_RESTARTED). */
export function errorStatus(code: string | null): number {
  return code !== null && Object.hasOwn(ERRORS, code) ? ERRORS[code as keyof typeof ERRORS].status : 500;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
