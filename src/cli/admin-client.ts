// The gateway's admin API (CONTRACT §5, loopback by default) as the operator commands read it: the
// shapes of GET /routes, /stats and /logs, one JSON getter that tells "no gateway answers"
// apart from "the gateway said no", an event-stream reader for /logs?follow=1, and the wait
// that turns a committed row into "live now".
import type { LogEntry } from '../observe/log-book.js';
import type { RouteStatus, StoreStatus } from '../routes/route-store.js';

/** GET /routes: the gateway's StoreStatus, one RouteStatus per key. */
export type RouteState = RouteStatus;
export type RoutesView = StoreStatus;

export interface StatsView {
  readonly time: number;
  readonly windowS: number;
  readonly workers: ReadonlyArray<{
    readonly id: string; readonly pid: number | null; readonly available: boolean;
    readonly score: number | null; readonly cpu: number | null; readonly mem: number | null; readonly io: number | null;
    readonly inFlight: number | null; readonly restarts: number | null;
    readonly rps: number | null; readonly p50Ms: number | null; readonly p99Ms: number | null; readonly errors: number | null;
  }>;
  readonly routes: ReadonlyArray<{
    readonly key: string; readonly state?: string; readonly runtime?: string; readonly calls?: number | null;
    readonly rps: number | null; readonly p50Ms: number | null; readonly p99Ms: number | null; readonly errors: number | null;
    /** The instance's CPU ms and peak MiB during a call, mean over the window; null (or absent, an older gateway) when unknown. */
    readonly cpuMeanMs?: number | null; readonly memPeakMeanMb?: number | null;
  }>;
  readonly sync: { readonly lastSyncAt?: number | null; readonly lastSuccessAt?: number | null; readonly lastError?: string; readonly routes?: number; readonly configErrors?: number };
  readonly recentErrors?: ReadonlyArray<{
    readonly time: number; readonly route: string; readonly status: number; readonly code: string;
    readonly requestId: string; readonly worker?: string; readonly message: string;
  }>;
}

/** One entry of GET /logs: the gateway's LogBook entry. */
export type { LogEntry };

export interface LogsPage {
  readonly entries: readonly LogEntry[];
  readonly next: number;
}

/** No gateway answered at all: refused, timed out, not HTTP. */
export class AdminUnreachable extends Error {}

/** The gateway answered, but not with what was asked for (a 404 from an older gateway, a 5xx). */
export class AdminRefused extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

const REQUEST_TIMEOUT_MS = 3000;

export class AdminClient {
  /** `token`: the admin API's bearer token (--admin-token-file), sent on every request when set. */
  constructor(readonly base: string, private readonly token?: string) {}

  async getJson<T>(pathAndQuery: string, signal?: AbortSignal): Promise<T> {
    const res = await this.request(pathAndQuery, signal, REQUEST_TIMEOUT_MS);
    const text = await res.text();
    if (!res.ok) {
      const missing = res.status === 404 ? ' (a gateway older than this command?)'
        : res.status === 401 ? ' (the admin API wants its token: --admin-token-file or FAAS_ADMIN_TOKEN_FILE)' : '';
      throw new AdminRefused(`the gateway at ${this.base} answered GET ${pathAndQuery} with ${res.status}${missing}: ${text.slice(0, 300).trim()}`, res.status);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new AdminRefused(`the gateway at ${this.base} answered GET ${pathAndQuery} with something that is not JSON: ${text.slice(0, 120)}`, res.status);
    }
  }

  /** Entries of GET /logs?follow=1 as they come (text/event-stream, `event: log`), until the stream ends or `signal` aborts. */
  async *follow(pathAndQuery: string, signal?: AbortSignal): AsyncGenerator<LogEntry> {
    const res = await this.request(pathAndQuery, signal, undefined);
    if (!res.ok || !res.body) {
      throw new AdminRefused(`the gateway at ${this.base} answered GET ${pathAndQuery} with ${res.status}: ${(await res.text()).slice(0, 300).trim()}`, res.status);
    }
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        const events = buffered.split(/\r?\n\r?\n/);
        buffered = events.pop()!;
        for (const event of events) {
          const entry = parseEvent(event);
          if (entry) yield entry;
        }
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw new AdminUnreachable(`the log stream from ${this.base} broke: ${describe(err)}`);
    }
  }

  private async request(pathAndQuery: string, signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<Response> {
    const signals = [signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)].filter((s): s is AbortSignal => s !== undefined);
    try {
      const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
      if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
      return await fetch(`${this.base}${pathAndQuery}`, { signal: signals.length > 0 ? AbortSignal.any(signals) : null, headers });
    } catch (err) {
      throw new AdminUnreachable(`no gateway answers at ${this.base} (${describe(err)})`);
    }
  }
}

/** One text/event-stream event: its `data:` lines joined, parsed when the event is `log` (or unnamed). */
export function parseEvent(event: string): LogEntry | undefined {
  let name = 'message';
  const data: string[] = [];
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith(':')) continue; // a comment, e.g. a keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if ((name !== 'log' && name !== 'message') || data.length === 0) return undefined;
  try {
    return JSON.parse(data.join('\n')) as LogEntry;
  } catch {
    return undefined;
  }
}

export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'no answer in time';
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

export type SyncOutcome =
  /** The gateway serves the row (deploy) or no longer serves the key (rm). */
  | { readonly kind: 'done'; readonly route?: RouteState }
  /** The gateway read the row and refused it; it serves the last good config (stale) or nothing (error). */
  | { readonly kind: 'refused'; readonly route: RouteState }
  | { readonly kind: 'unreachable'; readonly reason: string }
  | { readonly kind: 'timeout'; readonly view?: RoutesView; readonly reason?: string };

export interface SyncWait {
  readonly key: string;
  /** deploy: the change-log seq the row got (its version once served); rm: undefined, the key must be gone. */
  readonly version?: number;
  /** Date.now() taken after the commit returned: a sync that started later has read it. */
  readonly committedAt: number;
  readonly timeoutMs: number;
  /** While the row's build runs (state 'building'), the wait goes on this long from the commit instead. */
  readonly buildTimeoutMs?: number;
  /** Told once, when the gateway starts building the row (what runs). */
  onBuilding?(building: string): void;
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Polls GET /routes until the gateway has applied the commit. A sync whose start (lastSuccessAt)
 * is after the commit has read it (schema.ts: seq order is commit order, and a WAL reader sees
 * every commit before its read began), so from then on the route's state is the verdict on this
 * row. A row already served at its version counts at once. Returns 'unreachable' only when the
 * first call gets no answer.
 */
export async function waitForSync(admin: AdminClient, wait: SyncWait): Promise<SyncOutcome> {
  let deadline = Date.now() + wait.timeoutMs;
  let toldBuilding = false;
  let view: RoutesView | undefined;
  let lastProblem: string | undefined;
  for (let first = true; ; first = false) {
    try {
      view = await admin.getJson<RoutesView>('/routes', wait.signal);
      lastProblem = undefined;
      const route = view.routes.find((r) => r.key === wait.key);
      const synced = (view.lastSuccessAt ?? -Infinity) > wait.committedAt;
      if (wait.version === undefined) {
        if (route === undefined && synced) return { kind: 'done' };
      } else {
        if (route?.state === 'ok' && (route.version ?? -1) >= wait.version) return { kind: 'done', route };
        if (synced && route?.state === 'building') {
          // Installing or compiling: the gateway serves the row once it is built (or refuses it if the build fails).
          if (!toldBuilding) wait.onBuilding?.(route.building ?? 'building');
          toldBuilding = true;
          deadline = Math.max(deadline, wait.committedAt + (wait.buildTimeoutMs ?? wait.timeoutMs));
        } else if (synced && route !== undefined && route.state !== 'ok') return { kind: 'refused', route };
      }
    } catch (err) {
      if (first && err instanceof AdminUnreachable) return { kind: 'unreachable', reason: err.message };
      lastProblem = (err as Error).message;
    }
    if (Date.now() >= deadline || wait.signal?.aborted) return { kind: 'timeout', ...(view && { view }), ...(lastProblem && { reason: lastProblem }) };
    await sleep(Math.min(wait.pollMs ?? 100, Math.max(1, deadline - Date.now())));
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
