// Stopping instances: a replaced, idle or evicted instance gets SIGTERM and a grace period
// (STOP_GRACE_MS), then SIGKILL for its whole tree; a timed-out one is killed at once. In
// each mode, and nothing is left on the host once the gateway stops.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupFolders, deploy, eventually, expectNoResidue, hostResidue, MODES, pidsOfUid, startGateway, type Gateway } from './harness.js';

let gw: Gateway;
let residueBefore: ReturnType<typeof hostResidue>;

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore);
});

const obliging = 'def handle(request):\n    return "v1"\n';
const stubborn = 'import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ndef handle(request):\n    return "v1"\n';

describe.each(MODES)('stopping instances, %s mode', (mode) => {
  it('a replaced instance exits on SIGTERM; one that ignores it is killed after the grace period', async () => {
    for (const [name, code] of [['obliging', obliging], ['stubborn', stubborn]] as const) {
      expect(await (await deploy(gw, `GET:/${mode}/${name}`, { runtime: 'python', mode, code })).text()).toBe('v1');
    }
    const update = gw.sql().prepare('UPDATE functions SET v = json_set(v, \'$.code\', ?) WHERE k = ?');
    const stoppedAt = Date.now();
    for (const [name, code] of [['obliging', obliging], ['stubborn', stubborn]] as const) {
      update.run(code.replace('"v1"', '"v2"'), `GET:/${mode}/${name}`);
    }
    for (const name of ['obliging', 'stubborn']) {
      await eventually(async () => (await (await fetch(`${gw.http}/${mode}/${name}`)).text()) === 'v2', 8000);
    }
    const key = (name: string): string => `GET:/${mode}/${name}`;
    const exitOf = (name: string) => eventually(async () => gw.instanceLog(key(name)).find((l) => l.msg === 'instance exited'), 5000);
    const obligingExit = await exitOf('obliging');
    expect(obligingExit.code).toBe(0); // the runtime host's SIGTERM handler
    expect(gw.instanceLog(key('obliging')).some((l) => l.msg === 'instance did not exit on SIGTERM; killed')).toBe(false);
    await exitOf('stubborn');
    expect(gw.instanceLog(key('stubborn')).some((l) => l.msg === 'instance did not exit on SIGTERM; killed')).toBe(true);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1000); // STOP_GRACE_MS
  });
});

describe('min_warm', () => {
  it('starts instances before the first call, and the first call is warm', async () => {
    gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/prewarmed', JSON.stringify({
      runtime: 'python', min_warm: 2, memory_mb: 64, code: 'import os\ndef handle(request):\n    return str(os.getpid())\n' }));
    const started = () => gw.instanceLog('GET:/prewarmed').filter((l) => l.msg === 'instance started');
    await eventually(async () => started().length === 2, 8000);
    // Ready once the worker's load report lists it warm (GET /workers).
    await eventually(async () => (await (await fetch(`${gw.admin}/workers`)).json()).some((w: { warm: string[] }) => w.warm.includes('GET:/prewarmed')), 5000);
    const res = await fetch(`${gw.http}/prewarmed`);
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toContain('start;desc=warm');
    expect(started()).toHaveLength(2); // the call took one of them; none was started for it
  });

  it('is refused past 4 with a message naming the field and the rule', () => {
    const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    expect(() => insert.run('GET:/overwarm', JSON.stringify({ runtime: 'python', min_warm: 5, code: 'x' })))
      .toThrow('v.min_warm must be an integer between 0 and 4');
  });
});

describe('pre-started sandboxes', () => {
  it('keeps one of a memory_mb that a cold start asked for, so the next cold start of that shape adopts it', async () => {
    const key = 'GET:/shaped';
    const v = (n: number): string => JSON.stringify({ runtime: 'python', memory_mb: 96, code: `def handle(request):\n    return "v${n}"\n` });
    gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(key, v(1));
    await eventually(async () => (await (await fetch(`${gw.http}/shaped`)).text()) === 'v1', 8000);
    await new Promise((r) => setTimeout(r, 1500)); // the spare of this shape starts 250 ms after it was missed
    gw.sql().prepare('UPDATE functions SET v = ? WHERE k = ?').run(v(2), key);
    await eventually(async () => (await (await fetch(`${gw.http}/shaped`)).text()) === 'v2', 8000);
    const started = gw.instanceLog(key).filter((l) => l.msg === 'instance started');
    expect(started.map((l) => l.prestarted)).toEqual([false, true]);
  });

  it('takes node code deployed as a folder (copied into its /tmp), but not a folder too large to send', async () => {
    const small = path.join(gw.dir, 'fn-small');
    fs.mkdirSync(path.join(small, 'lib'), { recursive: true });
    fs.writeFileSync(path.join(small, 'index.mjs'), "import { greet } from './lib/greet.mjs';\nexport default { fetch: () => new Response(greet()) };\n");
    fs.writeFileSync(path.join(small, 'lib', 'greet.mjs'), "export const greet = () => 'hello from lib';\n");
    const large = path.join(gw.dir, 'fn-large');
    fs.cpSync(small, large, { recursive: true });
    fs.writeFileSync(path.join(large, 'blob.bin'), Buffer.alloc(5 * 1024 * 1024)); // past the 4 MiB a spare takes
    for (const dir of [gw.dir, small, large]) execFileSync('chmod', ['-R', 'a+rX', dir]);
    expect(await (await deploy(gw, 'GET:/folder/small', { runtime: 'node', path: small })).text()).toBe('hello from lib');
    expect(await (await deploy(gw, 'GET:/folder/large', { runtime: 'node', path: large })).text()).toBe('hello from lib');
    const prestarted = (key: string) => gw.instanceLog(key).find((l) => l.msg === 'instance started')?.prestarted;
    expect(prestarted('GET:/folder/small')).toBe(true);
    expect(prestarted('GET:/folder/large')).toBe(false);
  });
});

describe('a worker killed with SIGKILL', () => {
  it('leaves none of its sandboxes, zygote forks, containers or cgroups behind once it is replaced', async () => {
    const dir = path.join(gw.dir, 'killed');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'p.py'), 'def handle(request):\n    return "py"\n', { mode: 0o644 });
    await deploy(gw, 'GET:/killed/bwrap', { runtime: 'node', memory_mb: 200, code: 'export default { fetch: () => new Response("n") }' });
    await deploy(gw, 'GET:/killed/zygote', { runtime: 'python', path: path.join(dir, 'p.py') });
    await deploy(gw, 'GET:/killed/runc', { runtime: 'python', mode: 'container', code: 'def handle(r):\n    return "c"\n' });
    const workers = async () => (await (await fetch(`${gw.admin}/workers`)).json()) as Array<{ id: string; pid: number; available: boolean }>;
    const victim = (await workers())[0]!;
    const sandboxes = pidsOfUid((uid) => uid === 65534);
    expect(sandboxes.length).toBeGreaterThan(3);
    const mine = (): string[] => cgroupFolders().filter((f) => path.basename(f) === `faas-${victim.id}-${victim.pid}`);
    expect(mine().length).toBeGreaterThan(0);
    process.kill(victim.pid, 'SIGKILL');
    // Replaced and taking calls again: a new pid shows before the new worker has connected.
    await eventually(async () => (await workers()).some((w) => w.id === victim.id && w.pid !== victim.pid && w.pid > 0 && w.available), 15_000);
    await eventually(async () => sandboxes.every((pid) => !fs.existsSync(`/proc/${pid}`)), 5000);
    await eventually(async () => mine().length === 0, 5000);
    const runc = execFileSync('runc', ['--root', path.join(gw.runDir, 'containers', 'runc'), 'list', '--quiet'], { encoding: 'utf8' });
    expect(runc.split('\n').filter((id) => id.startsWith(`faas-${victim.id}-${victim.pid}-`))).toEqual([]);
    expect(await (await fetch(`${gw.http}/killed/runc`)).text()).toBe('c'); // and the new worker serves
  });
});
