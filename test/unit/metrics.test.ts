// The /metrics exposition of what calls cost their instance: faas_function_cpu_seconds and
// faas_function_memory_peak_bytes, histograms by route counted by hand (metrics.ts), valid for
// Prometheus' own linter, and dropped with their route.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Answered } from '../../src/calls.js';
import { GatewayMetrics } from '../../src/observe/metrics.js';

const MiB = 1024 * 1024;
const call = (route: string | undefined, cpuUs: number | undefined, memPeak: number | undefined): Answered => ({
  route, method: 'GET', path: '/', status: 200, ms: 2, fnMs: 1, cold: false, worker: 'w1', cpuUs, memPeak,
  code: undefined, message: undefined, requestId: 'r', traceId: '0af7651916cd43dd8448eb211c80319c',
});
const promtool = spawnSync('promtool', ['--version']).error === undefined;

describe('function CPU and memory histograms', () => {
  it('counts each call\'s CPU seconds and peak bytes by route, in cumulative buckets', async () => {
    const m = new GatewayMetrics([]);
    m.observe(call('GET:/a', 200_000, 70 * MiB)); // 0.2 s, 70 MiB
    m.observe(call('GET:/a', 300, 20 * MiB)); // 0.3 ms, 20 MiB
    const text = await m.render();
    expect(text).toContain('# TYPE faas_function_cpu_seconds histogram');
    expect(text).toMatch(/^faas_function_cpu_seconds_bucket\{le="0\.00025",route="GET:\/a"\} 0$/m);
    expect(text).toMatch(/^faas_function_cpu_seconds_bucket\{le="0\.0005",route="GET:\/a"\} 1$/m);
    expect(text).toMatch(/^faas_function_cpu_seconds_bucket\{le="0\.25",route="GET:\/a"\} 2$/m);
    expect(text).toMatch(/^faas_function_cpu_seconds_bucket\{le="\+Inf",route="GET:\/a"\} 2$/m);
    expect(text).toMatch(/^faas_function_cpu_seconds_sum\{route="GET:\/a"\} 0\.2003$/m);
    expect(text).toMatch(/^faas_function_cpu_seconds_count\{route="GET:\/a"\} 2$/m);
    expect(text).toContain('# TYPE faas_function_memory_peak_bytes histogram');
    expect(text).toMatch(/^faas_function_memory_peak_bytes_bucket\{le="16777216",route="GET:\/a"\} 0$/m);
    expect(text).toMatch(/^faas_function_memory_peak_bytes_bucket\{le="33554432",route="GET:\/a"\} 1$/m);
    expect(text).toMatch(/^faas_function_memory_peak_bytes_bucket\{le="134217728",route="GET:\/a"\} 2$/m);
    expect(text).toMatch(/^faas_function_memory_peak_bytes_sum\{route="GET:\/a"\} 94371840$/m);
    expect(text).toMatch(/^faas_function_memory_peak_bytes_count\{route="GET:\/a"\} 2$/m);
  });

  it('has no series for calls whose worker reported no usage, and counts each figure on its own', async () => {
    const m = new GatewayMetrics([]);
    m.observe(call('GET:/none', undefined, undefined));
    m.observe(call('GET:/cpu-only', 1000, undefined));
    m.observe(call(undefined, undefined, undefined)); // a 404
    const text = await m.render();
    expect(text).not.toMatch(/^faas_function_\w+\{[^}]*route="GET:\/none"/m);
    expect(text).toMatch(/^faas_function_cpu_seconds_count\{route="GET:\/cpu-only"\} 1$/m);
    expect(text).not.toMatch(/^faas_function_memory_peak_bytes\w*\{[^}]*route="GET:\/cpu-only"/m);
    expect(text).not.toMatch(/^faas_function_\w+\{[^}]*route=""/m);
    expect(text).toMatch(/^faas_requests_total\{route="GET:\/none",status="200"\} 1$/m); // the request is counted as before
  });

  it('drops a deleted route\'s series with its other series', async () => {
    const m = new GatewayMetrics([]);
    m.observe(call('GET:/gone', 1000, MiB));
    m.observe(call('GET:/kept', 1000, MiB));
    m.forgetRoutes((key) => key === 'GET:/kept');
    const text = await m.render();
    expect(text).not.toContain('route="GET:/gone"');
    expect(text).toMatch(/^faas_function_cpu_seconds_count\{route="GET:\/kept"\} 1$/m);
    expect(text).toMatch(/^faas_function_memory_peak_bytes_count\{route="GET:\/kept"\} 1$/m);
  });

  it.skipIf(!promtool)('passes promtool check metrics', async () => {
    const m = new GatewayMetrics([]);
    m.observe(call('GET:/a', 200_000, 70 * MiB));
    m.observe(call('POST:/b "quoted"\\', 5, 4 * MiB));
    const check = spawnSync('promtool', ['check', 'metrics'], { input: await m.render(), encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
  });
});
