// Async invocations without a gateway: the dispatcher over a real invocations database (a temp
// file) with a fake fleet, and the pure pieces (callback URLs, Prefer, backoff, the view).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { callbackRequest, callbackUrlProblem, isThisHost } from '../../src/async/callbacks.js';
import { backoffMs, Dispatcher } from '../../src/async/dispatcher.js';
import { headersObject, invocationView } from '../../src/async/view.js';
import { GatewayError } from '../../src/errors.js';
import { prefersAsync } from '../../src/http/async-accept.js';
import type { Invocation, InvocationResult } from '../../src/calls.js';
import type { FunctionConfig } from '../../src/protocol/messages.js';
import { InvocationStore, invocationsDbPath, type NewInvocation } from '../../src/routes/invocation-store.js';
import { RouteTable, type Route } from '../../src/routes/route-table.js';

const dirs: string[] = [];
const stores: InvocationStore[] = [];

afterEach(() => {
  for (const s of stores.splice(0)) {
    try {
      s.close();
    } catch {
      /* closed by the test */
    }
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDb(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-async-'));
  dirs.push(dir);
  return path.join(dir, 'faas-invocations.db');
}

function open(file: string): InvocationStore {
  const s = InvocationStore.open(file);
  stores.push(s);
  return s;
}

function routes(asyncConfig: FunctionConfig['async'], key = 'POST:/job'): RouteTable {
  const config = { runtime: 'node', mode: 'process', code: 'x', timeoutMs: 1000, memoryMb: 128, maxConcurrency: 100, minWarm: 0, env: {}, auth: 'none',
    ...(asyncConfig && { async: asyncConfig }) } as FunctionConfig;
  const route: Route = { key, method: 'POST', path: key.slice(5), version: 1, updated: 0, config };
  return new RouteTable(new Map([[key, route]]));
}

function answer(status: number, body = ''): InvocationResult {
  return { status, headers: ['content-type', 'text/plain'], body: Buffer.from(body), workerId: 'w1', cold: false, fnMs: 1, cpuUs: undefined, memPeak: undefined };
}

let n = 0;
function call(extra: Partial<NewInvocation> = {}): NewInvocation {
  n++;
  return { id: `id-${String(n).padStart(19, '0')}`, route: 'POST:/job', requestId: `r${n}`, method: 'POST', path: '/job', query: '', headers: ['x-a', '1'],
    body: Buffer.from(`body ${n}`), clientIp: '127.0.0.1', callbackUrl: undefined, created: Date.now(), ...extra };
}

/** A fake fleet: records each call; the test settles them. */
function fleet() {
  const calls: Array<{ inv: Invocation; resolve: (r: InvocationResult) => void; reject: (e: Error) => void }> = [];
  return {
    calls,
    invoke: (inv: Invocation): Promise<InvocationResult> => new Promise((resolve, reject) => calls.push({ inv, resolve, reject })),
    attempt: (i: number) => headerOf(calls[i]!.inv.headers, 'x-faas-attempt'),
  };
}

function headerOf(h: readonly string[], name: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const log = (): void => {};

describe('Dispatcher', () => {
  it('stores a call before it resolves, runs it with its attempt and id, and keeps the answer', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes(undefined), invoke: f.invoke, log });
    d.start();
    const c = call();
    await d.accept(c);
    expect(store.get(c.id)?.state).toMatch(/queued|running/);
    await until(() => f.calls.length === 1);
    expect(f.calls[0]!.inv.headers).toEqual(['x-a', '1', 'x-faas-attempt', '1', 'x-faas-invocation-id', c.id]);
    expect(f.calls[0]!.inv.body.toString()).toBe(c.body.toString());
    expect(store.get(c.id)).toMatchObject({ state: 'running', attempts: 1 });
    f.calls[0]!.resolve(answer(201, 'made'));
    await until(() => store.get(c.id)?.state === 'succeeded');
    const row = store.get(c.id)!;
    expect(row.result).toMatchObject({ status: 201, body: Buffer.from('made'), bytes: 4 });
    expect(row.expires! - row.finished!).toBe(86_400_000);
    expect(d.counters.get('POST:/job')).toEqual({ accepted: 1, succeeded: 1, retries: 0, deadLetters: 0 });
  });

  it('runs at most `concurrency` of a route at once, oldest first', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes({ concurrency: 2, retries: 0, backoffMs: 0, ttlS: 60 }), invoke: f.invoke, log });
    d.start();
    const cs = [call(), call(), call(), call(), call()];
    await Promise.all(cs.map((c) => d.accept(c)));
    await until(() => f.calls.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.calls.length).toBe(2);
    expect(d.queues().get('POST:/job')).toMatchObject({ waiting: 3, running: 2 });
    f.calls[0]!.resolve(answer(200));
    await until(() => f.calls.length === 3);
    f.calls[1]!.resolve(answer(200));
    f.calls[2]!.resolve(answer(200));
    await until(() => f.calls.length === 5);
    expect(f.calls.map((c) => headerOf(c.inv.headers, 'x-faas-invocation-id'))).toEqual(cs.map((c) => c.id));
  });

  it('retries 5xx answers and gateway errors with backoff, then keeps a dead letter that retry() brings back', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes({ concurrency: 4, retries: 2, backoffMs: 20, ttlS: 60 }), invoke: f.invoke, log });
    d.start();
    const c = call();
    await d.accept(c);
    await until(() => f.calls.length === 1);
    const t0 = Date.now();
    f.calls[0]!.resolve(answer(503, 'busy'));
    await until(() => f.calls.length === 2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    f.calls[1]!.reject(new GatewayError('FUNCTION_TIMEOUT', 'too slow'));
    await until(() => f.calls.length === 3);
    expect([f.attempt(0), f.attempt(1), f.attempt(2)]).toEqual(['1', '2', '3']);
    f.calls[2]!.reject(new GatewayError('WORKER_DIED', 'gone'));
    await until(() => store.get(c.id)?.state === 'failed');
    expect(store.get(c.id)).toMatchObject({ attempts: 3, errorCode: 'WORKER_DIED', error: 'gone' });
    expect(d.counters.get('POST:/job')).toMatchObject({ retries: 2, deadLetters: 1 });
    expect(store.deadLetters()).toBe(1);

    expect(d.retry('nope')).toBe('not-found');
    expect(d.retry(c.id)).toBe('queued');
    await until(() => f.calls.length === 4);
    expect(f.attempt(3)).toBe('4');
    f.calls[3]!.resolve(answer(200, 'ok'));
    await until(() => store.get(c.id)?.state === 'succeeded');
    expect(d.retry(c.id)).toEqual({ state: 'succeeded' });
  });

  it('does not count a call no worker could take', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes({ concurrency: 1, retries: 0, backoffMs: 0, ttlS: 60 }), invoke: f.invoke, log });
    d.start();
    const c = call();
    await d.accept(c);
    await until(() => f.calls.length === 1);
    f.calls[0]!.reject(new GatewayError('NO_WORKER_AVAILABLE', 'none'));
    await until(() => f.calls.length === 2, 2000);
    // The function never saw attempt 1: the next one is numbered 1 again, and retries: 0 did not dead-letter it.
    expect(f.attempt(1)).toBe('1');
    f.calls[1]!.resolve(answer(200));
    await until(() => store.get(c.id)?.state === 'succeeded');
    expect(store.get(c.id)?.attempts).toBe(1);
  });

  it('after a crash, runs again what was running, under the next attempt number, or dead-letters it past its retries', async () => {
    const file = tempDb();
    const crashed = open(file);
    const f1 = fleet();
    const settings = { concurrency: 4, retries: 1, backoffMs: 0, ttlS: 60 };
    const d1 = new Dispatcher({ store: crashed, routes: () => routes(settings), invoke: f1.invoke, log });
    d1.start();
    const a = call();
    const b = call();
    const queuedOnly = call();
    await d1.accept(a);
    await d1.accept(b);
    await until(() => f1.calls.length === 2);
    // b's first attempt had failed and its retry was running when the gateway died.
    crashed.commit([{ kind: 'requeue', id: b.id, nextAt: Date.now(), uncount: false, errorCode: 'FUNCTION_STATUS', error: 'x' }], [b.id], Date.now());
    d1.stop();
    await d1.accept(queuedOnly);
    expect(crashed.get(b.id)?.attempts).toBe(2);

    // A new gateway on the same file (the old connection is simply left: a SIGKILL closes nothing).
    const store = open(file);
    const f2 = fleet();
    const d2 = new Dispatcher({ store, routes: () => routes(settings), invoke: f2.invoke, log });
    d2.start();
    await until(() => f2.calls.length === 2);
    expect(f2.calls.map((c) => [headerOf(c.inv.headers, 'x-faas-invocation-id'), f2.attempt(f2.calls.indexOf(c))]))
      .toEqual([[a.id, '2'], [queuedOnly.id, '1']]);
    expect(store.get(a.id)).toMatchObject({ state: 'running', attempts: 2, errorCode: 'GATEWAY_RESTARTED' });
    expect(store.get(b.id)).toMatchObject({ state: 'failed', attempts: 2, errorCode: 'GATEWAY_RESTARTED' });
    for (const c of f2.calls) c.resolve(answer(200));
    await until(() => store.get(a.id)?.state === 'succeeded' && store.get(queuedOnly.id)?.state === 'succeeded');
  });

  it('wakes up for a retry whose backoff ends later, with nothing else going on (after a restart too)', async () => {
    const file = tempDb();
    const before = open(file);
    const c = call();
    const now = Date.now();
    before.commit([{ kind: 'insert', row: c }], [c.id], now);
    before.commit([{ kind: 'requeue', id: c.id, nextAt: now + 150, uncount: false, errorCode: 'FUNCTION_STATUS', error: 'x' }], [], now);
    const store = open(file);
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes(undefined), invoke: f.invoke, log });
    d.start();
    await until(() => f.calls.length === 1, 2000);
    expect(Date.now()).toBeGreaterThanOrEqual(now + 150);
    expect(f.attempt(0)).toBe('2');
    f.calls[0]!.resolve(answer(200));
    await until(() => store.get(c.id)?.state === 'succeeded');
  });

  it('dead-letters what waited past its ttl_s, and sweeps finished ones past it', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes({ concurrency: 1, retries: 0, backoffMs: 0, ttlS: 1 }), invoke: f.invoke, log });
    d.start();
    const old = call({ created: Date.now() - 5000 });
    await d.accept(old);
    await until(() => store.get(old.id)?.state === 'failed');
    expect(store.get(old.id)).toMatchObject({ attempts: 0, errorCode: 'EXPIRED' });
    expect(f.calls.length).toBe(0);
    expect(store.sweep(Date.now() + 2000)).toBe(1);
    expect(store.get(old.id)).toBeUndefined();
  });

  it('fails what is queued for a route that is gone', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes(undefined, 'GET:/other'), invoke: f.invoke, log });
    d.start();
    const c = call();
    await d.accept(c);
    await until(() => store.get(c.id)?.state === 'failed');
    expect(store.get(c.id)).toMatchObject({ errorCode: 'ROUTE_NOT_FOUND', error: 'no function is mapped to POST:/job now' });
  });

  it('reads a streamed answer whole, keeping at most 1 MiB of it', async () => {
    const store = open(tempDb());
    const f = fleet();
    const d = new Dispatcher({ store, routes: () => routes(undefined), invoke: f.invoke, log });
    d.start();
    const c = call();
    await d.accept(c);
    await until(() => f.calls.length === 1);
    const { BodyStream } = await import('../../src/protocol/body-stream.js');
    let acked = 0;
    const stream = new BodyStream<never>({ ack: (b) => { acked += b; }, cancel: () => {} });
    f.calls[0]!.resolve({ ...answer(200), stream: stream as never });
    await new Promise((r) => setTimeout(r, 10)); // the dispatcher reads it (and acknowledges) from here
    stream.push(Buffer.alloc(700 * 1024, 97));
    stream.push(Buffer.alloc(700 * 1024, 98));
    stream.end();
    await until(() => store.get(c.id)?.state === 'succeeded');
    const r = store.get(c.id)!.result!;
    expect([r.body.length, r.bytes, acked]).toEqual([1024 * 1024, 1400 * 1024, 1400 * 1024]);
  });
});

describe('callback URLs', () => {
  it('takes http and https receivers, refuses other schemes and the gateway\'s own ports on this host', () => {
    const own = [8080, 9090];
    expect(callbackUrlProblem('http://127.0.0.1:4000/hook', own)).toBeUndefined();
    expect(callbackUrlProblem('https://hooks.example/x?y=1', own)).toBeUndefined();
    expect(callbackUrlProblem('http://hooks.example:8080/', own)).toBeUndefined(); // another host's 8080
    expect(callbackUrlProblem('ftp://127.0.0.1/x', own)).toMatch(/must be an http:\/\/ or https:\/\/ URL \(got the scheme "ftp"\)/);
    expect(callbackUrlProblem('/relative', own)).toMatch(/must be an absolute http/);
    for (const u of ['http://127.0.0.1:8080/', 'http://localhost:9090/x', 'http://[::1]:8080', 'http://0.0.0.0:8080', 'http://127.9.9.9:9090',
      `http://${os.hostname()}:8080/`, 'http://[::ffff:127.0.0.1]:8080/']) {
      expect(callbackUrlProblem(u, own), u).toMatch(/must not point at the gateway itself/);
    }
    expect(callbackUrlProblem('http://localhost/', [80])).toMatch(/gateway itself/); // the default port counts
    expect(callbackUrlProblem(`http://x/${'a'.repeat(3000)}`, own)).toMatch(/at most 2048/);
    expect(isThisHost('hooks.example')).toBe(false);
  });

  it('carries the function\'s body and status as OpenFaaS does, or the error of a call that never answered', () => {
    const base = { seq: 1, id: 'I', route: 'POST:/job', attempts: 2, created: 0, queuedAt: 0, nextAt: 0, started: 0, finished: 1, expires: 2, requestId: 'r',
      bodyBytes: 0, errorCode: null, error: null, callbackUrl: 'http://h/', callbackState: 'pending' as const, callbackAttempts: 0, callbackError: null };
    const ok = callbackRequest({ ...base, state: 'succeeded', status: 201,
      result: { status: 201, headers: ['content-type', 'text/csv', 'x-other', '1'], body: Buffer.from('a,b'), bytes: 3 } });
    expect(ok.headers).toMatchObject({ 'x-function-status': '201', 'x-call-id': 'I', 'x-faas-state': 'succeeded', 'x-faas-attempts': '2', 'content-type': 'text/csv' });
    expect(ok.body.toString()).toBe('a,b');
    const timedOut = callbackRequest({ ...base, state: 'failed', status: null, result: undefined, errorCode: 'FUNCTION_TIMEOUT', error: 'too slow' });
    expect(timedOut.headers).toMatchObject({ 'x-function-status': '504', 'x-faas-error-code': 'FUNCTION_TIMEOUT', 'content-type': 'application/json' });
    expect(JSON.parse(timedOut.body.toString())).toEqual({ statusCode: 504, code: 'FUNCTION_TIMEOUT', error: 'Gateway Timeout', message: 'too slow' });
  });
});

describe('async pieces', () => {
  it('reads Prefer: respond-async among other preferences', () => {
    expect(prefersAsync('respond-async')).toBe(true);
    expect(prefersAsync('wait=10, Respond-Async')).toBe(true);
    expect(prefersAsync('respond-async; x=1')).toBe(true);
    expect(prefersAsync('return=minimal')).toBe(false);
    expect(prefersAsync('respond-asyncx')).toBe(false);
  });

  it('doubles the backoff per retry, up to 15 minutes', () => {
    expect([1, 2, 3, 4].map((r) => backoffMs(1000, r))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffMs(1000, 30)).toBe(900_000);
    expect(backoffMs(0, 3)).toBe(0);
  });

  it('puts the queue beside the routes database', () => {
    expect(invocationsDbPath('/data/faas.db')).toBe('/data/faas-invocations.db');
    expect(invocationsDbPath('/data/routes')).toBe('/data/routes-invocations.db');
    expect(invocationsDbPath('/data/r.sqlite3')).toBe('/data/r-invocations.sqlite3');
  });

  it('shows headers as an object and a binary body as base64', () => {
    expect(headersObject(['a', '1', 'set-cookie', 'x', 'set-cookie', 'y'])).toEqual({ a: '1', 'set-cookie': ['x', 'y'] });
    const view = invocationView({ seq: 1, id: 'I', route: 'POST:/job', state: 'succeeded', attempts: 1, created: 0, queuedAt: 0, nextAt: 0, started: 0,
      finished: 1, expires: 2, requestId: 'r', bodyBytes: 3, status: 200, result: { status: 200, headers: [], body: Buffer.from([0xff, 0]), bytes: 5 },
      errorCode: null, error: null, callbackUrl: null, callbackState: null, callbackAttempts: 0, callbackError: null });
    expect(view.result).toEqual({ status: 200, headers: {}, body: '/wA=', isBase64Encoded: true, bytes: 5, truncated: true });
    expect(view.status).toBe('/.faas/invocations/I');
  });
});
