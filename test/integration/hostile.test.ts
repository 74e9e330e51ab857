// Hostile functions from test/fixtures/hostile/, deployed by `path` the way an operator
// would: each is refused or stopped with a clear status, and the worker keeps serving.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, expectNoResidue, hostResidue, MODES, startGateway, type Gateway } from './harness.js';

let gw: Gateway;
let fixtures: string;
let residueBefore: ReturnType<typeof hostResidue>;

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
  // The checkout may not be readable by the sandbox user (uid 65534); the gateway's temp dir is.
  fixtures = path.join(gw.dir, 'hostile');
  fs.cpSync('test/fixtures/hostile', fixtures, { recursive: true });
  fs.chmodSync(fixtures, 0o755);
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore); // no process, cgroup or container left behind
});

const at = (file: string): string => path.join(fixtures, file);

describe.each(MODES)('hostile functions, %s mode', (mode) => {
  it('an infinite loop ends at timeout_ms with 504, and the worker keeps serving', async () => {
    const res = await deploy(gw, `GET:/${mode}/loop`, { mode, runtime: 'node', path: at('infinite-loop.mjs'), timeout_ms: 500 });
    expect(res.status).toBe(504);
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
  });

  it('sleeping past timeout_ms is 504, and the next call gets a fresh instance', async () => {
    const first = await deploy(gw, `GET:/${mode}/sleepy`, { mode, runtime: 'python', path: at('sleep.py'), timeout_ms: 300 });
    expect(first.status).toBe(200);
    const instance = await first.text();
    const started = Date.now();
    const res = await fetch(`${gw.http}/${mode}/sleepy?sleep=1`);
    expect(res.status).toBe(504);
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3000);
    const after = await fetch(`${gw.http}/${mode}/sleepy`); // one worker: it lands where the timeout was
    expect(after.status).toBe(200);
    expect(await after.text()).not.toBe(instance);
    expect(after.headers.get('server-timing')).toContain('start;desc=cold');
  });

  it('an output flood is capped in the log and the call still answers', async () => {
    const res = await deploy(gw, `GET:/${mode}/flood`, { mode, runtime: 'python', path: at('output-flood.py') });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('flooded');
    const requestId = res.headers.get('x-request-id')!;
    const output = (): string => gw.logs().split('\n').filter((l) => l.includes(requestId) && l.includes('function output'))
      .map((l) => JSON.parse(l).text as string).join('');
    // The gateway's log is written every 100 ms (or 16 Ki chars).
    const logged = await eventually(async () => output().includes('[output truncated at 8192 bytes]') && output());
    expect(logged.length).toBeLessThan(9000);
  });

  it('filling the disk stops at the file-size limit and at the private /tmp size', async () => {
    const res = await deploy(gw, `GET:/${mode}/fill`, { mode, runtime: 'node', path: at('disk-fill.mjs') });
    expect(res.status).toBe(200);
    const { bigFile, manyFiles } = await res.json();
    expect(bigFile).toEqual({ code: 'EFBIG', writtenMiB: 32 });
    expect(manyFiles.code).toBe('ENOSPC');
    expect(manyFiles.writtenMiB).toBeLessThanOrEqual(64);
  });

  it('symlinks, /proc and ptrace lead nowhere', async () => {
    const res = await deploy(gw, `GET:/${mode}/escape`, { mode, runtime: 'python', path: at('escape.py') });
    expect(res.status).toBe(200);
    const r = await res.json();
    expect(r.shadowViaSymlink).toBe(2); // ENOENT: the host's /etc is not in the sandbox
    expect(r.rootViaSymlink).toBe(2);
    expect([2, 13]).toContain(r.hostRootViaProc);
    expect(r.pid1Environ).not.toContain('must-not-leak');
    expect(r.ptrace).toEqual([-1, 1]); // EPERM from the seccomp filter
    expect(r.mountinfoLines).toBeLessThan(20);
    expect([13, 30]).toContain(r.writeOwnCode); // EACCES or EROFS: code deployed by path is not writable
  });

  it('a response over 6 MiB is refused with a clear error', async () => {
    const res = await deploy(gw, `GET:/${mode}/huge`, { mode, runtime: 'node', path: at('huge-response.mjs') });
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_RESPONSE_INVALID');
    expect(body.message).toMatch(/response body of 10485760 bytes is over the limit/);
  });
});
