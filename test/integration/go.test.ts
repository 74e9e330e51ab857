// Go functions (README "Go"): compiled by the gateway once per source hash with Debian's Go,
// the program is the runtime host itself, in the same sandbox as node and python. Deployed
// inline with plain SQL and as a module of two files with `faas deploy`, in process and
// container mode; a compile error is a row error with the compiler's words while the previous
// version is served; a prebuilt program (an ELF) runs as it is; the isolation probe, the hostile
// fixtures and the lifecycle behave as for the other runtimes; a restart compiles nothing again.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectHostLimits } from '../../src/host/host-limits.js';
import { eventually, expectNoResidue, hostResidue, MODES, sandboxProcesses, sleep, startGateway, type Gateway } from './harness.js';
import { NO_CAPS, SANDBOX_ENV } from './probes.js';

const CLI = path.resolve('dist/src/cli/main.js');
const host = detectHostLimits();
const cgroups = host.missing.memory === undefined && host.missing.pids === undefined;
let gw: Gateway;
let hostile: string;
let example: string;
let residueBefore: ReturnType<typeof hostResidue>;
/** The first answer of a route whose first build is running. */
let whileBuilding: { status: number; text: string; headers: Headers };

const inline = (word: string): string => `package function

import (
	"fmt"
	"net/http"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "${word} %s", r.URL.Query().Get("name"))
}
`;

async function routeState(key: string): Promise<Record<string, any>> {
  const routes = (await (await fetch(`${gw.admin}/routes`)).json()).routes as Array<Record<string, any>>;
  return routes.find((r) => r.key === key) ?? {};
}

/** Waits out the compile (the first one builds Go's standard library into the cache: tens of seconds here). */
async function served(key: string): Promise<Record<string, any>> {
  return eventually(async () => {
    const r = await routeState(key);
    return r.state === 'ok' ? r : undefined;
  }, 180_000, 250);
}

function upsert(key: string, v: Record<string, unknown>): void {
  gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v').run(key, JSON.stringify(v));
}

async function call(p: string, init?: RequestInit): Promise<{ status: number; text: string; headers: Headers }> {
  const r = await fetch(`${gw.http}${p}`, init);
  return { status: r.status, text: await r.text(), headers: r.headers };
}

function faas(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--db', gw.dbPath, '--admin', gw.admin], { encoding: 'utf8', timeout: 200_000 }, (err, out, errText) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out, err: errText });
    });
  });
}

const buildLines = (msg: string): string[] => gw.logs().split('\n').filter((l) => l.includes(`"msg":"${msg}"`) && l.includes('"kind":"go"'));

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
  // The checkout may not be readable by the sandbox user, who also compiles: the gateway's temp dir is.
  hostile = path.join(gw.dir, 'hostile');
  example = path.join(gw.dir, 'go-hello');
  fs.cpSync('test/fixtures/go/hostile', hostile, { recursive: true });
  fs.cpSync('examples/go-hello', example, { recursive: true });
  for (const dir of [hostile, example]) fs.chmodSync(dir, 0o755);
  // Compile the hostile program once, up front: the routes below share it (one source, one build).
  upsert('GET:/go/alive', { runtime: 'go', path: hostile });
  whileBuilding = await eventually(async () => {
    const r = await call('/go/alive');
    return r.status === 503 ? r : undefined;
  }, 10_000, 100);
  await served('GET:/go/alive');
}, 240_000);

afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore);
});

describe('deploying go functions', () => {
  it('a new route answers 503 FUNCTION_BUILDING with Retry-After while it compiles, not 404', () => {
    expect(whileBuilding.status).toBe(503);
    expect(whileBuilding.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = JSON.parse(whileBuilding.text);
    expect(body.code).toBe('FUNCTION_BUILDING');
    expect(body.message).toMatch(/^GET:\/go\/alive is being built \(go build \(1 file, handler Handle\): (queued|running for \d+ s)\); it is served once the build ends$/);
  });

  it.each(MODES)('%s: inline code written with plain SQL is compiled once and served', async (mode) => {
    upsert(`GET:/go/inline-${mode}`, { runtime: 'go', mode, code: inline('hi') });
    const route = await served(`GET:/go/inline-${mode}`);
    expect(route.build).toMatchObject({ kind: 'go', what: 'go build (1 file, handler Handle)' });
    expect(route.build.summary).toMatch(/^compiled 1 Go file with go1\.\d+/);
    expect(await call(`/go/inline-${mode}?name=you`)).toMatchObject({ status: 200, text: 'hi you' });
  });

  it('the same source is compiled once, whichever routes and modes use it', () => {
    const inlineBuilds = buildLines('build started').filter((l) => l.includes('GET:/go/inline-'));
    expect(inlineBuilds).toHaveLength(1);
  });

  it('a module of two files deployed with faas deploy: deploy says it compiles it, and what it built', async () => {
    const run = await faas('deploy', 'GET:/go/hello', example, '--runtime', 'go', '--env', 'GREETING=howdy');
    expect(run.code, run.err + run.out).toBe(0);
    expect(run.err).toContain('the gateway compiles the module (2 .go files at its root) with go build before serving it');
    expect(run.out).toContain('building: go build (2 files, handler Handle)');
    expect(run.out).toMatch(/built: compiled 2 Go files with go1\.\d+\S* in \d+\.\d s/);
    const answer = await call('/go/hello?name=you');
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.text);
    expect(body).toEqual({ greeting: 'howdy, you', requestId: answer.headers.get('x-request-id') });
    // In container mode too (the same program), and POST bodies reach it.
    upsert('POST:/go/hello', { runtime: 'go', mode: 'container', path: example });
    await served('POST:/go/hello');
    expect(JSON.parse((await call('/go/hello', { method: 'POST', body: 'gopher' })).text).greeting).toBe('hello, gopher');
    // Its output is the call's, in the gateway's log.
    await eventually(async () => gw.logs().includes(`"route":"GET:/go/hello","requestId":"${answer.headers.get('x-request-id')}"`), 3000);
  });

  it('one .go file deployed inline with faas deploy --inline', async () => {
    const file = path.join(gw.dir, 'shout.go');
    fs.writeFileSync(file, inline('HEY'));
    const run = await faas('deploy', 'GET:/go/cli-inline', file, '--runtime', 'go', '--inline');
    expect(run.code, run.err + run.out).toBe(0);
    expect(run.out).toMatch(/built: compiled 1 Go file with go1\.\d+\S* in \d+\.\d s/);
    expect(JSON.parse(gw.sql().prepare('SELECT v FROM functions WHERE k = ?').pluck().get('GET:/go/cli-inline') as string))
      .toEqual({ runtime: 'go', code: inline('HEY') });
    expect(await call('/go/cli-inline?name=you')).toMatchObject({ status: 200, text: 'HEY you' });
  });

  it('a compile error is a row error with the compiler\'s message; the previous version is still served', async () => {
    upsert('GET:/go/inline-process', { runtime: 'go', mode: 'process', code: inline('hi').replace('fmt.Fprintf', 'undefinedThing(); fmt.Fprintf') });
    const route = await eventually(async () => {
      const r = await routeState('GET:/go/inline-process');
      return r.state === 'stale' ? r : undefined;
    }, 120_000, 250);
    expect(route.error).toMatch(/^go build of the inline code failed \(exit \d+\)/);
    expect(route.error).toMatch(/function\.go:\d+:\d+: undefined: undefinedThing/);
    expect(await call('/go/inline-process?name=still')).toMatchObject({ status: 200, text: 'hi still' });
  });

  it('a handler of the wrong shape, or a handler name that is not exported, is said plainly', async () => {
    upsert('GET:/go/shape', { runtime: 'go', code: 'package function\n\nfunc Handle(name string) string { return name }\n' });
    const route = await eventually(async () => {
      const r = await routeState('GET:/go/shape');
      return r.state === 'error' ? r : undefined;
    }, 120_000, 250);
    expect(route.error).toMatch(/cannot use function\.Handle \(value of type func\(name string\) string\) as (type )?http\.HandlerFunc/);
    expect(route.error).toContain('(the handler must be func Handle(w http.ResponseWriter, r *http.Request), as net/http\'s HandlerFunc)');
    expect(() => upsert('GET:/go/lower', { runtime: 'go', code: inline('x'), handler: 'handle' })).toThrow(/v\.handler of a go function must be an exported Go function name/);
  });

  it('a prebuilt program (path to an ELF) runs as it is', async () => {
    const ready = buildLines('build ready').map((l) => JSON.parse(l)).find((l) => l.key === 'GET:/go/alive')!;
    const program = path.join(gw.dir, 'prebuilt');
    fs.copyFileSync(path.join(ready.dir, 'bin', 'function'), program);
    fs.chmodSync(program, 0o755);
    upsert('GET:/go/prebuilt', { runtime: 'go', path: program });
    const route = await served('GET:/go/prebuilt');
    expect(route.build).toBeUndefined();
    expect((await call('/go/prebuilt')).text).toMatch(/^alive \d+-\d+$/);
  });
});

describe.each(MODES)('a go function is isolated and limited like the others, %s mode', (mode) => {
  it('the isolation probe: unprivileged, read-only system, private /tmp, no network, nothing of the host\'s env', async () => {
    upsert(`GET:/go/${mode}/probe`, { runtime: 'go', mode, path: hostile, env: { GREETING: 'hi' } });
    await served(`GET:/go/${mode}/probe`);
    const p = JSON.parse((await call(`/go/${mode}/probe?do=probe&port=${new URL(gw.http).port}`)).text);
    expect(p.uid).toBe(65534);
    expect(p.gid).toBe(65534);
    expect(p.caps).toEqual(NO_CAPS);
    expect(p.noNewPrivs).toBe('1');
    expect(p.seccomp).toBe('2');
    expect(Object.fromEntries(p.env.map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))).toEqual(SANDBOX_ENV);
    for (const denied of [p.writeEtc, p.writeUsr, p.writeRoot, p.writeOwnCode]) expect(denied).toMatch(/read-only file system|permission denied/);
    expect(p.writeTmp).toBe('ok');
    expect(p.readShadow).toBe('no such file or directory');
    expect(p.connectGateway).toBe('permission denied'); // AF_INET: refused by the seccomp filter
    expect(p.interfaces).toBeNull(); // netlink: refused too
  });

  it('an infinite loop ends at timeout_ms with 504; sleeping past it too, and the next call gets a fresh instance', async () => {
    upsert(`GET:/go/${mode}/slow`, { runtime: 'go', mode, path: hostile, timeout_ms: 500 });
    await served(`GET:/go/${mode}/slow`);
    const first = await call(`/go/${mode}/slow`);
    const loop = await call(`/go/${mode}/slow?do=loop`);
    expect(loop.status).toBe(504);
    expect(JSON.parse(loop.text).code).toBe('FUNCTION_TIMEOUT');
    const after = await call(`/go/${mode}/slow`);
    expect(after.status).toBe(200);
    expect(after.text).not.toBe(first.text);
    expect((await call(`/go/${mode}/slow?do=sleep&ms=2000`)).status).toBe(504);
    expect((await call(`/go/${mode}/slow`)).status).toBe(200);
  });

  it('a panic is 500 FUNCTION_ERROR and the instance serves on; os.Exit is 502 FUNCTION_CRASHED with the status', async () => {
    upsert(`GET:/go/${mode}/crash`, { runtime: 'go', mode, path: hostile });
    await served(`GET:/go/${mode}/crash`);
    const before = (await call(`/go/${mode}/crash`)).text;
    const panicked = await call(`/go/${mode}/crash?do=panic`);
    expect(panicked.status).toBe(500);
    expect(JSON.parse(panicked.text)).toMatchObject({ code: 'FUNCTION_ERROR' });
    expect(JSON.parse(panicked.text).message).toContain('boom');
    expect((await call(`/go/${mode}/crash`)).text).toBe(before);
    const exited = await call(`/go/${mode}/crash?do=exit`);
    expect(exited.status).toBe(502);
    expect(JSON.parse(exited.text)).toMatchObject({ code: 'FUNCTION_CRASHED' });
    expect(JSON.parse(exited.text).message).toContain('3');
  });

  it('an output flood is capped in the log and the call still answers', async () => {
    upsert(`GET:/go/${mode}/flood`, { runtime: 'go', mode, path: hostile });
    await served(`GET:/go/${mode}/flood`);
    const res = await call(`/go/${mode}/flood?do=flood`);
    expect(res).toMatchObject({ status: 200, text: 'flooded' });
    const requestId = res.headers.get('x-request-id')!;
    const output = (): string => gw.logs().split('\n').filter((l) => l.includes(requestId) && l.includes('function output'))
      .map((l) => JSON.parse(l).text as string).join('');
    const logged = await eventually(async () => output().includes('[output truncated at 8192 bytes]') && output());
    expect(logged.length).toBeLessThan(9000);
  });

  it('filling the disk stops at the file-size limit and at the private /tmp size', async () => {
    upsert(`GET:/go/${mode}/fill`, { runtime: 'go', mode, path: hostile });
    await served(`GET:/go/${mode}/fill`);
    const { bigFile, manyFiles } = JSON.parse((await call(`/go/${mode}/fill?do=fill`)).text);
    expect(bigFile).toEqual({ code: 'EFBIG', writtenMiB: 32 });
    expect(manyFiles.code).toBe('ENOSPC');
    expect(manyFiles.writtenMiB).toBeLessThanOrEqual(64);
  });

  it.skipIf(!cgroups)('a memory bomb past memory_mb is killed: 502 naming the limit; the next call works', async () => {
    upsert(`GET:/go/${mode}/bomb`, { runtime: 'go', mode, path: hostile, memory_mb: 64 });
    await served(`GET:/go/${mode}/bomb`);
    const bomb = await call(`/go/${mode}/bomb?do=mem`);
    expect(bomb.status).toBe(502);
    expect(JSON.parse(bomb.text).message).toContain('memory limit of 64 MiB (memory_mb) exceeded');
    expect((await call(`/go/${mode}/bomb`)).status).toBe(200);
  });

  it.skipIf(!cgroups)('starting processes stops at the pids limit, and leaves none behind', async () => {
    upsert(`GET:/go/${mode}/fork`, { runtime: 'go', mode, path: hostile, timeout_ms: 10_000 });
    await served(`GET:/go/${mode}/fork`);
    expect((await call(`/go/${mode}/fork`)).status).toBe(200); // its instance started: counted in `before`
    const before = sandboxProcesses();
    const res = await call(`/go/${mode}/fork?do=fork`);
    // The program answers how many it started before EAGAIN, or the Go runtime, out of threads, dies (502).
    if (res.status === 200) {
      const { started, error } = JSON.parse(res.text);
      expect(started).toBeGreaterThan(5);
      expect(started).toBeLessThan(64); // pids.max per instance, the host's own threads included
      expect(error).toMatch(/resource temporarily unavailable/);
    } else expect(res.status).toBe(502);
    await eventually(async () => sandboxProcesses() <= before, 10_000);
    expect((await call(`/go/${mode}/fork`)).status).toBe(200);
  });

  it('a replaced instance exits on SIGTERM (status 0)', async () => {
    const key = `GET:/go/${mode}/replaced`;
    upsert(key, { runtime: 'go', mode, path: hostile });
    await served(key);
    expect((await call(`/go/${mode}/replaced`)).status).toBe(200);
    upsert(key, { runtime: 'go', mode, path: hostile, timeout_ms: 1234 }); // a new version: the old instance is stopped…
    await eventually(async () => (await routeState(key)).version > 0 && (await call(`/go/${mode}/replaced`)).status === 200 &&
      gw.instanceLog(key).filter((l) => l.msg === 'instance started').length >= 2, 10_000); // …once a call meets the new one
    const exit = await eventually(async () => gw.instanceLog(key).find((l) => l.msg === 'instance exited'), 10_000);
    expect(exit.code).toBe(0);
    expect(gw.instanceLog(key).some((l) => l.msg === 'instance did not exit on SIGTERM; killed')).toBe(false);
  });
});

describe('a restarted gateway', () => {
  it('compiles nothing again: its programs are in the cache (build cache hit in the log)', async () => {
    const dir = gw.dir;
    const exited = new Promise((r) => gw.proc.once('exit', r));
    gw.proc.kill('SIGTERM');
    await exited;
    gw = await startGateway([], { workers: 1, dir });
    await sleep(300);
    await served('GET:/go/hello');
    await served('GET:/go/inline-container');
    expect(JSON.parse((await call('/go/hello?name=again')).text).greeting).toBe('howdy, again');
    expect(buildLines('build cache hit').length).toBeGreaterThanOrEqual(3);
    // Only the rows whose build failed are tried again (failures are not kept across restarts).
    const rebuilt = buildLines('build started').map((l) => JSON.parse(l).key);
    expect(rebuilt.every((k: string) => k === 'GET:/go/inline-process' || k === 'GET:/go/shape')).toBe(true);
  });
});
