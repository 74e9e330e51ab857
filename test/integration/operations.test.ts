// What operators read: /metrics (checked by Prometheus' own promtool), the access log and the
// recent log with function output by request id (GET /logs, and its live follow), W3C trace
// context from the client through to each runtime, /stats, and what a call cost its instance
// (CPU and peak memory from its cgroup) in each of them.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectHostLimits } from '../../src/host/host-limits.js';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

// Per-call CPU and memory come from the instance's cgroup: where the worker makes one (cgroup
// v1 memory hierarchy it can write, cpuacct beside it; or a delegated cgroup2), every process
// sandbox has them. This project's CI hosts (hybrid v1) do.
const accounting = detectHostLimits().missing.memory === undefined;

let gw: Gateway;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE}-00f067aa0ba902b7-01`;

beforeAll(async () => {
  gw = await startGateway([], { workers: 2 });
  await deploy(gw, 'GET:/ops/fetch', { runtime: 'node', code:
    'export default { fetch(request, env, ctx) { console.log("fetch saw", ctx.requestId); return Response.json({ ctx: ctx.traceparent, header: request.headers.get("traceparent") }) } }' });
  await deploy(gw, 'GET:/ops/lambda', { runtime: 'node', code:
    'export async function handler(event, context) { return { statusCode: 200, body: JSON.stringify({ ctx: context.traceparent, header: event.headers.traceparent }) } }' });
  await deploy(gw, 'GET:/ops/python', { runtime: 'python', code:
    'def handle(request):\n    print("python saw", request.request_id, "and", 2, "more words")\n    return {"ctx": request.traceparent, "header": request.headers.get("traceparent")}\n' });
  await deploy(gw, 'GET:/ops/throws', { runtime: 'node', code: 'export default { fetch() { console.error("about to throw"); throw new Error("ops boom") } }' });
});
afterAll(async () => {
  await gw?.stop();
});

interface LogEntry { seq: number; kind: string; route: string; requestId: string; traceId?: string; status?: number; text?: string; stream?: string; code?: string }
const logs = async (query: string): Promise<{ entries: LogEntry[]; next: number }> => (await fetch(`${gw.admin}/logs?${query}`)).json();

describe('trace context', () => {
  for (const [route, runtime] of [['/ops/fetch', 'node fetch'], ['/ops/lambda', 'node handler'], ['/ops/python', 'python']] as const) {
    it(`${runtime}: the function sees the client's trace under a new parent span, in its context and its headers`, async () => {
      const res = await fetch(`${gw.http}${route}`, { headers: { traceparent: TRACEPARENT, tracestate: 'vendor=1' } });
      expect(res.status).toBe(200);
      const seen = (await res.json()) as { ctx: string; header: string };
      expect(seen.ctx).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
      expect(seen.ctx).not.toBe(TRACEPARENT);
      expect(seen.header).toBe(seen.ctx);
    });
  }

  it('starts a trace when the client sent none, and logs the trace id with the request id', async () => {
    const res = await fetch(`${gw.http}/ops/fetch`);
    const requestId = res.headers.get('x-request-id')!;
    const seen = (await res.json()) as { ctx: string };
    const traceId = seen.ctx.split('-')[1];
    expect(traceId).toBe(requestId.replace(/-/g, ''));
    const line = await eventually(async () => gw.accessLog(requestId)[0]);
    expect(line).toMatchObject({ level: 'info', component: 'gateway', route: 'GET:/ops/fetch', method: 'GET', path: '/ops/fetch',
      status: 200, worker: expect.stringMatching(/^w\d$/), cold: expect.any(Boolean), requestId, traceId, ms: expect.any(Number), fnMs: expect.any(Number),
      cpuMs: accounting ? expect.any(Number) : null, memPeakMb: accounting ? expect.any(Number) : null });
  });
});

describe('the recent log (GET /logs)', () => {
  it('has what a function printed, one entry per line, tagged with its request id and route (access entries are not kept)', async () => {
    const res = await fetch(`${gw.http}/ops/python`);
    const requestId = res.headers.get('x-request-id')!;
    const mine = await eventually(async () => {
      const { entries } = await logs('route=GET:/ops/python');
      const found = entries.filter((e) => e.requestId === requestId);
      return found.length >= 1 && found;
    });
    await new Promise((r) => setTimeout(r, 200)); // nothing more comes for it
    expect((await logs('route=GET:/ops/python')).entries.filter((e) => e.requestId === requestId)).toEqual(mine);
    expect(mine.map((e) => [e.kind, e.text])).toEqual([['output', `python saw ${requestId} and 2 more words\n`]]);
    // The gateway's own log has it too (written every 100 ms).
    await eventually(async () => gw.logs().includes(`"msg":"function output","route":"GET:/ops/python","requestId":"${requestId}"`));
  });

  it('has an error entry with its code for a call that failed, and the function\'s stderr before it', async () => {
    const res = await fetch(`${gw.http}/ops/throws`);
    expect(res.status).toBe(500);
    const requestId = res.headers.get('x-request-id')!;
    const mine = await eventually(async () => {
      const found = (await logs('route=GET:/ops/throws')).entries.filter((e) => e.requestId === requestId);
      return found.length >= 2 && found;
    });
    expect(mine.map((e) => e.kind)).toEqual(['output', 'error']);
    expect(mine[0]).toMatchObject({ stream: 'stderr', text: 'about to throw' });
    expect(mine[1]).toMatchObject({ status: 500, code: 'FUNCTION_ERROR' });
  });

  it('refuses bad parameters with 400 naming them', async () => {
    for (const [query, word] of [['limit=0', 'limit'], ['after=-1', 'after'], ['follow=yes', 'follow']]) {
      const res = await fetch(`${gw.admin}/logs?${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { message: string }).message, query).toContain(word);
    }
  });

  it('follows: entries added after the stream opens arrive as SSE events with their seq as id, access entries too; Last-Event-ID resumes', async () => {
    const { next } = await logs('limit=1');
    const events: string[] = [];
    const req = http.get(`${gw.admin}/logs?follow=1&route=GET:/ops/fetch`, (res) => {
      expect(res.headers['content-type']).toBe('text/event-stream');
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => events.push(chunk));
    });
    try {
      await eventually(async () => events.join('').includes(': connected'));
      const res = await fetch(`${gw.http}/ops/fetch`);
      const requestId = res.headers.get('x-request-id')!;
      const text = await eventually(async () => {
        const all = events.join('');
        return all.includes(`fetch saw ${requestId}`) && all.includes('"kind":"access"') && all;
      });
      expect(text).toMatch(/id: \d+\nevent: log\ndata: \{/);
      expect(text).not.toContain('GET:/ops/python'); // another route's entries are not sent
    } finally {
      req.destroy();
    }
    // A client that reconnects with Last-Event-ID gets what it missed first.
    const resumed = await new Promise<string>((resolve, reject) => {
      let body = '';
      const r = http.get(`${gw.admin}/logs?follow=1&route=GET:/ops/fetch`, { headers: { 'last-event-id': String(next) } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (body.includes('fetch saw')) {
            r.destroy();
            resolve(body);
          }
        });
      });
      r.on('error', reject);
    });
    expect(resumed).toContain('fetch saw');
  });
});

describe('/metrics and /stats', () => {
  it('/metrics passes promtool check metrics and has the series operators watch', async () => {
    await fetch(`${gw.http}/nope`);
    await fetch(`${gw.http}/ops/throws`);
    const res = await fetch(`${gw.admin}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error, 'promtool (Debian package prometheus) must be installed').toBeUndefined();
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
    for (const series of [
      /^faas_requests_total\{route="GET:\/ops\/fetch",status="200"\} \d+$/m,
      /^faas_request_duration_seconds_bucket\{le="0\.005",route="GET:\/ops\/fetch",status="200"\} \d+$/m,
      /^faas_requests_total\{route="",status="404"\} \d+$/m,
      /^faas_cold_starts_total\{route="GET:\/ops\/fetch"\} [1-9]\d*$/m,
      /^faas_errors_total\{route="GET:\/ops\/throws",code="FUNCTION_ERROR"\} [1-9]\d*$/m,
      /^faas_worker_score\{worker="w1"\} [\d.]+$/m,
      /^faas_worker_in_flight\{worker="w2"\} 0$/m,
      /^faas_worker_up\{worker="w1"\} 1$/m,
      /^faas_worker_restarts_total\{worker="w1"\} 0$/m,
      /^faas_datagrams_received_total [1-9]\d*$/m,
      /^faas_datagrams_dropped_total\{reason="\w+"\} \d+$/m,
      /^faas_config_sync_age_seconds [\d.e-]+$/m,
      /^faas_config_errors 0$/m,
      /^nodejs_eventloop_lag_seconds [\d.e-]+$/m,
      /^process_resident_memory_bytes \d+$/m,
    ]) expect(text).toMatch(series);
  });

  it('/stats has each route\'s calls, rps, p50/p99 and errors over the window, and the workers', async () => {
    for (let i = 0; i < 5; i++) await fetch(`${gw.http}/ops/lambda`);
    const stats = (await (await fetch(`${gw.admin}/stats`)).json()) as {
      windowS: number; routes: Array<{ key: string; calls: number; rps: number; p50Ms: number; p99Ms: number; errors: number }>;
      workers: Array<{ id: string; available: boolean; score: number }>; recentErrors: Array<{ route: string; code: string }>;
      sync: { lastSuccessAt: number; routes: number };
    };
    const route = stats.routes.find((r) => r.key === 'GET:/ops/lambda')!;
    expect(route.calls).toBeGreaterThanOrEqual(5);
    expect(route.rps).toBeCloseTo(route.calls / stats.windowS);
    expect(route.p50Ms).toBeGreaterThan(0);
    expect(route.p99Ms).toBeGreaterThanOrEqual(route.p50Ms);
    expect(route.errors).toBe(0);
    expect(stats.workers.map((w) => w.id).sort()).toEqual(['w1', 'w2']);
    expect(stats.workers.every((w) => w.available && w.score > 0)).toBe(true);
    expect(stats.recentErrors.find((e) => e.route === 'GET:/ops/throws')).toMatchObject({ code: 'FUNCTION_ERROR' });
    expect(stats.sync.routes).toBeGreaterThanOrEqual(4);
  });
});

/** The access log line of one request, once the gateway's buffered log has written it. */
async function accessLineOf(requestId: string): Promise<Record<string, unknown>> {
  return eventually(async () => gw.accessLog(requestId)[0]);
}

describe('what a call cost its instance (from its cgroup)', () => {
  it.skipIf(!accounting)('a CPU-bound call reports its CPU in server-timing, the access log, /metrics and /stats', async () => {
    await deploy(gw, 'GET:/ops/busy', { runtime: 'node', code:
      'export default { fetch() { const end = Date.now() + 200; let n = 0; while (Date.now() < end) n++; return new Response(String(n)) } }' });
    const res = await fetch(`${gw.http}/ops/busy`); // warm: the instance's start-up is not in it either way
    expect(res.status).toBe(200);
    const timing = res.headers.get('server-timing')!;
    const cpuMs = Number(/(?:^|, )cpu;dur=([\d.]+)$/.exec(timing)?.[1]);
    const fnMs = Number(/function;dur=([\d.]+)/.exec(timing)?.[1]);
    expect(cpuMs, timing).toBeGreaterThanOrEqual(100); // ~200 ms of busy loop, on a shared 2-core machine
    expect(cpuMs, timing).toBeLessThanOrEqual(fnMs * os.availableParallelism() + 5); // read within the worker's time on the call
    const line = await accessLineOf(res.headers.get('x-request-id')!);
    expect(line.cpuMs).toBeCloseTo(cpuMs, 2);
    expect(line.memPeakMb).toBeGreaterThan(0);
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/^faas_function_cpu_seconds_bucket\{le="0\.05",route="GET:\/ops\/busy"\} 0$/m); // neither call under 50 ms
    expect(metrics).toMatch(/^faas_function_cpu_seconds_count\{route="GET:\/ops\/busy"\} 2$/m);
    const stats = (await (await fetch(`${gw.admin}/stats`)).json()) as { routes: Array<{ key: string; cpuMeanMs: number | null; cpuP99Ms: number | null }> };
    const busy = stats.routes.find((r) => r.key === 'GET:/ops/busy')!;
    expect(busy.cpuMeanMs).toBeGreaterThanOrEqual(100);
    expect(busy.cpuP99Ms).toBeGreaterThanOrEqual(busy.cpuMeanMs!);
  });

  it.skipIf(!accounting)('a call that allocates 64 MiB reports a peak of at least 64 MiB', async () => {
    await deploy(gw, 'GET:/ops/alloc', { runtime: 'node', memory_mb: 256, code:
      'export default { fetch(request) { if (!new URL(request.url).searchParams.has("go")) return new Response("idle"); ' +
      'const b = Buffer.alloc(64 * 1048576, 1); return new Response(String(b[b.length - 1])) } }' });
    const res = await fetch(`${gw.http}/ops/alloc?go=1`);
    expect(await res.text()).toBe('1');
    const line = await accessLineOf(res.headers.get('x-request-id')!);
    expect(line.memPeakMb).toBeGreaterThanOrEqual(64);
    expect(line.memPeakMb).toBeLessThanOrEqual(256); // memory_mb: the cgroup's limit
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/^faas_function_memory_peak_bytes_bucket\{le="67108864",route="GET:\/ops\/alloc"\} [01]$/m); // the idle call may be under
    expect(metrics).toMatch(/^faas_function_memory_peak_bytes_bucket\{le="268435456",route="GET:\/ops\/alloc"\} 2$/m);
  });

  it('a request no function ran has no figures: null in the access log, no cpu in server-timing', async () => {
    const res = await fetch(`${gw.http}/ops/no-such-route`);
    expect(res.status).toBe(404);
    expect(res.headers.get('server-timing')).toMatch(/^gateway;dur=[\d.]+$/);
    expect(await accessLineOf(res.headers.get('x-request-id')!)).toMatchObject({ status: 404, cpuMs: null, memPeakMb: null });
  });
});
