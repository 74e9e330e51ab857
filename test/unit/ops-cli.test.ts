// The pure parts of the operators' commands (src/cli/): argument parsing, the deploy plan and
// how its refusals name the flags, tables and frames, the event-stream and Server-Timing
// parsers; and the examples they deploy (the folder entry rule agrees with the worker's, the
// committed hello.wasm is hello.wat assembled).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEvent } from '../../src/cli/admin-client.js';
import { parseArgs } from '../../src/cli/args.js';
import { labelled, parseRateLimit, planDeployment, splitProblems } from '../../src/cli/deploy.js';
import { table } from '../../src/cli/format.js';
import { buildRequest, parseServerTiming } from '../../src/cli/invoke.js';
import { formatEntry } from '../../src/cli/logs.js';
import { syncLine } from '../../src/cli/routes.js';
import { ENTRY_FILES, resolveSource } from '../../src/cli/source.js';
import { renderTop } from '../../src/cli/top.js';
import { materialize } from '../../workers/function-code.js';
// @ts-expect-error a plain ES module without types
import { assemble } from '../../examples/wasm/build.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-ops-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const DEPLOY_SPECS = [
  { name: '--runtime', value: 'one' }, { name: '--mode', value: 'one' }, { name: '--timeout-ms', value: 'one' },
  { name: '--env', value: 'many' }, { name: '--rate-limit', value: 'one' }, { name: '--inline' }, { name: '--memory-mb', value: 'one' },
  { name: '--cpu', value: 'one' }, { name: '--isolation', value: 'one' }, { name: '--event', value: 'one' }, { name: '--cors-origin', value: 'many' },
] as const;

describe('parseArgs', () => {
  it('reads --flag value, --flag=value, aliases, repeats and switches, and stops at --', () => {
    const a = parseArgs(['POST:/x', '--data=a=b', '-H', 'a: 1', '--header', 'b: 2', '--json', '--', '--not-a-flag'],
      [{ name: '--data', value: 'one' }, { name: '--header', alias: '-H', value: 'many' }, { name: '--json' }]);
    expect(a.problems).toEqual([]);
    expect(a.positionals).toEqual(['POST:/x', '--not-a-flag']);
    expect(a.values.get('--data')).toEqual(['a=b']);
    expect(a.values.get('--header')).toEqual(['a: 1', 'b: 2']);
    expect(a.switches.has('--json')).toBe(true);
  });

  it('lists every problem: unknown flags (with their value), a missing value, a flag given twice, a value for a switch', () => {
    const a = parseArgs(['--bogus', '1', '--limit', '5', '--limit', '6', '--json=yes', '--limit'],
      [{ name: '--limit', value: 'one' }, { name: '--json' }]);
    expect(a.positionals).toEqual([]);
    expect(a.problems).toEqual([
      'unknown option "--bogus" (known: --limit, --json)',
      '--limit is given twice ("5" and "6"); give it once',
      '--json takes no value (got "--json=yes")',
      '--limit needs a value',
    ]);
  });
});

describe('faas deploy plan', () => {
  const plan = (file: string, ...argv: string[]): ReturnType<typeof planDeployment> =>
    planDeployment('GET:/x', file, parseArgs(argv, DEPLOY_SPECS));

  it('builds the row from the flags, numbers as numbers', () => {
    const p = plan('examples/fetch.mjs', '--runtime', 'node', '--timeout-ms', '5000', '--env', 'A=1', '--env', 'B=x=y', '--rate-limit', '2.5');
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(JSON.parse(p.v)).toEqual({ runtime: 'node', path: fs.realpathSync('examples/fetch.mjs'), timeout_ms: 5000,
      env: { A: '1', B: 'x=y' }, rate_limit: { rps: 2.5, burst: 3 } });
  });

  it('takes --cpu as a number of cores and --isolation for container mode, naming the flag when they break a rule', () => {
    const ok = plan('examples/fetch.mjs', '--runtime', 'node', '--cpu', '0.25');
    expect(ok.ok && JSON.parse(ok.v).cpu).toBe(0.25);
    const bad = plan('examples/fetch.mjs', '--runtime', 'node', '--cpu', '32', '--isolation', 'gvisor');
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.problems).toEqual([
      '--isolation: v.isolation needs "mode": "container" (got "process")',
      '--cpu: v.cpu must be a number of cores between 0.1 and 16 (0.5 is half a core) (got 32)',
    ]);
  });

  it('takes --event and repeated --cors-origin, naming the flag when they break a rule', () => {
    const ok = plan('examples/fetch.mjs', '--runtime', 'node', '--event', 'v2', '--cors-origin', 'https://a.example', '--cors-origin', 'http://localhost:3000');
    expect(ok.ok && JSON.parse(ok.v)).toMatchObject({ event: 'v2', cors: { origins: ['https://a.example', 'http://localhost:3000'] } });
    const bad = plan('examples/fetch.mjs', '--runtime', 'node', '--event', 'v9', '--cors-origin', 'https://a.example/app');
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.problems).toEqual([
      '--event: v.event must be one of "v1", "v2" (got "v9")',
      '--cors-origin: v.cors.origins must be a non-empty array of origins, each "*" (any) or scheme://host[:port] without a path ("https://app.example", "http://localhost:3000") (got ["https://a.example/app"])',
    ]);
  });

  it('names the flag behind each of the gateway\'s rules, all at once', () => {
    const p = plan('examples/fetch.mjs', '--runtime', 'node', '--mode', 'thread', '--timeout-ms', '0', '--memory-mb', 'lots', '--rate-limit', '5/0');
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.problems).toEqual([
      '--mode: v.mode "thread" is for runtime "wasm" only (got "thread")',
      '--timeout-ms: v.timeout_ms must be an integer between 1 and 900000 (got 0)',
      '--memory-mb: v.memory_mb must be an integer between 16 and 16384 (got "lots")',
      '--rate-limit: v.rate_limit.burst must be an integer of at least 1 (got 0)',
    ]);
  });

  it('splits the gateway\'s joined problems only where a new one starts', () => {
    const joined = 'v.timeot is not a known field (did you mean "timeout_ms"?); allowed fields: runtime, mode; v.auth must be one of "none", "api-key" (got "x")';
    expect(splitProblems(joined)).toHaveLength(2);
    expect(labelled(splitProblems(joined)[1]!)).toBe('--auth: v.auth must be one of "none", "api-key" (got "x")');
    expect(parseRateLimit('10/20')).toEqual({ rps: 10, burst: 20 });
    expect(parseRateLimit('0.2')).toEqual({ rps: 0.2, burst: 1 });
    expect(parseRateLimit('fast')).toEqual({ rps: 'fast', burst: 1 });
  });

  it('refuses --inline with a folder, and takes a wasm folder\'s single module', () => {
    expect(resolveSource('examples/container', 'node', undefined, true).problems[0]).toContain('--inline needs a FILE');
    const wasm = resolveSource('examples/wasm', 'wasm', undefined, false);
    expect(wasm.source?.path).toBe(fs.realpathSync('examples/wasm/hello.wasm'));
    expect(wasm.source?.notes[0]).toContain('deploying its module hello.wasm');
    const inline = resolveSource('examples/wasm/hello.wasm', 'wasm', undefined, true);
    expect(Buffer.from(inline.source!.code!, 'base64')).toEqual(fs.readFileSync('examples/wasm/hello.wasm'));
  });

  it('refuses code the sandbox user cannot read, naming the folder and the fix', () => {
    const dir = path.join(tmp, 'private');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'f.mjs'), 'export default {}');
    fs.chmodSync(tmp, 0o755);
    const r = resolveSource(path.join(dir, 'f.mjs'), 'node', undefined, false);
    expect(r.problems[0]).toContain(`the sandbox user (uid 65534) cannot read it: ${fs.realpathSync(dir)} is mode 700 (needs o+x): chmod o+x`);
    expect(resolveSource(path.join(dir, 'f.mjs'), 'node', undefined, true).problems).toEqual([]);
  });
});

describe('a folder\'s entry file', () => {
  for (const runtime of ['node', 'python'] as const) {
    it(`is the one the worker loads (${runtime}), first of ${ENTRY_FILES[runtime].join(', ')}`, () => {
      const dir = path.join(tmp, `entries-${runtime}`);
      fs.mkdirSync(dir, { recursive: true });
      for (const name of ENTRY_FILES[runtime]) fs.writeFileSync(path.join(dir, name), '');
      for (const name of ENTRY_FILES[runtime]) {
        const ours = resolveSource(dir, runtime, undefined, false);
        const worker = materialize({ runtime, mode: 'process', path: dir, timeoutMs: 1, memoryMb: 16, maxConcurrency: 1, minWarm: 0, env: {}, auth: 'none' }, tmp);
        expect(path.basename(ours.source!.entry)).toBe(name);
        expect(worker.entry).toBe(`/fn/${name}`);
        fs.rmSync(path.join(dir, name));
      }
    });
  }
});

describe('examples/wasm', () => {
  it('hello.wasm is hello.wat assembled (node examples/wasm/build.mjs)', async () => {
    expect(Buffer.compare(await assemble('examples/wasm/hello.wat'), fs.readFileSync('examples/wasm/hello.wasm'))).toBe(0);
  });
});

describe('output for people', () => {
  it('aligns tables, numbers to the right, unknowns as "-", without trailing spaces', () => {
    expect(table(['KEY', 'N', 'ERROR'], [['GET:/a', 1, undefined], ['POST:/long', 12.5, 'bad\nrow']])).toBe(
      'KEY            N  ERROR\n' +
      'GET:/a         1  -\n' +
      'POST:/long  12.5  bad row\n',
    );
  });

  it('writes the sync line from the gateway\'s clock', () => {
    expect(syncLine({ lastSyncAt: 900, lastSuccessAt: 900 }, 3, 1, 1000)).toBe('sync: ok, last 0.1 s ago; 3 routes, 1 with errors');
    expect(syncLine({ lastSyncAt: 900, lastSuccessAt: 0, lastError: 'SQLITE_BUSY' }, 1, 0, 1000))
      .toBe('sync: FAILING (last try 0.1 s ago, last success 1.0 s ago; serving from memory): SQLITE_BUSY; 1 route');
  });

  it('prints a log entry per line, several lines of output as several lines', () => {
    const base = { seq: 1, time: Date.UTC(2025, 0, 2, 3, 4, 5, 678), route: 'GET:/a', requestId: 'r1', level: 'info' as const, msg: '' };
    expect(formatEntry({ ...base, kind: 'access', status: 200, ms: 3.21, worker: 'w1', cold: true }))
      .toBe('2025-01-02T03:04:05.678Z  r1  GET:/a  [access]  200 3.2ms w1 cold\n');
    expect(formatEntry({ ...base, kind: 'output', stream: 'stderr', text: 'one\ntwo\n' }))
      .toBe('2025-01-02T03:04:05.678Z  r1  GET:/a  [stderr]  one\n2025-01-02T03:04:05.678Z  r1  GET:/a  [stderr]  two\n');
    expect(formatEntry({ ...base, kind: 'error', status: 504, code: 'FUNCTION_TIMEOUT', msg: 'timed out after 300 ms' }))
      .toBe('2025-01-02T03:04:05.678Z  r1  GET:/a  [error]  504 FUNCTION_TIMEOUT timed out after 300 ms\n');
  });

  it('draws a top frame: workers, routes, sync, latest errors', () => {
    const frame = renderTop({
      time: 10_000, windowS: 10,
      workers: [
        { id: 'w10', pid: 11, available: false, score: null, cpu: null, mem: null, io: null, inFlight: 0, restarts: 2, rps: 0, p50Ms: null, p99Ms: null, errors: 0 },
        { id: 'w2', pid: 12, available: true, score: 41.26, cpu: 50, mem: 30.04, io: 1, inFlight: 3, restarts: 0, rps: 12.3, p50Ms: 0.42, p99Ms: 123.4, errors: 1 },
      ],
      routes: [{ key: 'GET:/a', state: 'ok', runtime: 'node', calls: 123, rps: 12.3, p50Ms: 0.42, p99Ms: 123.4, errors: 1, cpuMeanMs: 0.317, memPeakMeanMb: 41.26 },
        { key: 'GET:/b', state: 'ok', runtime: 'python', calls: 0, rps: 0, p50Ms: null, p99Ms: null, errors: 0, cpuMeanMs: null, memPeakMeanMb: null }],
      sync: { lastSyncAt: 9000, lastSuccessAt: 9000, routes: 1, configErrors: 0 },
      recentErrors: [{ time: 9500, route: 'GET:/a', status: 504, code: 'FUNCTION_TIMEOUT', requestId: 'r9', worker: 'w2', message: 'timed out' }],
    }, 'http://127.0.0.1:9090');
    expect(frame).toContain('faas top — http://127.0.0.1:9090 — 1970-01-01T00:00:10.000Z — calls over the last 10 s\n');
    const lines = frame.split('\n');
    const w2 = lines.findIndex((l) => l.startsWith('w2 '));
    expect(w2).toBeGreaterThan(0);
    expect(lines[w2 + 1]).toMatch(/^w10 +11 +down +- +- +- +- +0 +0 +- +- +0 +2$/); // w2 before w10
    expect(lines[w2]).toMatch(/^w2 +12 +up +41\.3 +50 +30 +1 +3 +12\.3 +0\.42 +123 +1 +0$/);
    expect(frame).toMatch(/^GET:\/a +ok +node +12\.3 +0\.42 +123 +0\.32 +41\.3 +1$/m);
    expect(frame).toMatch(/^GET:\/b +ok +python +0 +- +- +- +- +0$/m);
    expect(frame).toContain('sync: ok, last 1.0 s ago; 1 route\n');
    expect(frame).toMatch(/^1970-01-01T00:00:09\.500Z +GET:\/a +504 +FUNCTION_TIMEOUT +r9 +w2 +timed out$/m);
  });
});

describe('parsers', () => {
  it('reads text/event-stream events, skipping comments and other events', () => {
    expect(parseEvent('id: 3\nevent: log\ndata: {"seq":3,"kind":"access"}')).toEqual({ seq: 3, kind: 'access' });
    expect(parseEvent(': keep-alive')).toBeUndefined();
    expect(parseEvent('event: stats\ndata: {}')).toBeUndefined();
  });

  it('reads Server-Timing', () => {
    expect(parseServerTiming('gateway;dur=1.2, function;dur=0.8, start;desc=cold')).toEqual({ gateway: 1.2, function: 0.8, start: 'cold' });
    expect(parseServerTiming('gateway;dur=0.120, function;dur=201.5, start;desc=warm, cpu;dur=199.870'))
      .toEqual({ gateway: 0.12, function: 201.5, start: 'warm', cpu: 199.87 });
    expect(parseServerTiming(null)).toBeNull();
  });

  it('builds the call, or every reason it cannot be made', () => {
    expect(buildRequest('GET:/a?b=1', undefined, ['x-a: 1'])).toEqual({ method: 'GET', path: '/a?b=1', headers: [['x-a', '1']] });
    const bad = buildRequest('GET:/a', 'body', ['no colon', 'x: ok']);
    expect('problems' in bad && bad.problems).toEqual([
      '-H must be \'Name: value\' with a header name of letters, digits and !#$%&\'*+.^_`|~- (got "no colon")',
      '--data cannot be sent with GET: HTTP gives a GET request no body',
    ]);
    expect(buildRequest('POST:/a', '@/nonexistent/file', [])).toEqual({ problems: ['--data "@/nonexistent/file": cannot read "/nonexistent/file" (ENOENT)'] });
  });
});
