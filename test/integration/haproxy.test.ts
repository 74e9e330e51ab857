// Several gateways behind a real HAProxy (issue 17): two gateways with --agent-port, HAProxy 2.6
// run from examples/haproxy.cfg itself (addresses and ports replaced), its state read from its
// stats socket. Both UP with the weights their agents give; calls in flight lower a gateway's
// weight; a gateway without a worker is DOWN by its agent; one shutting down is drained while
// it finishes its calls, and a new one on the same ports is restored by its first line; one
// SIGKILLed is DOWN within about a check interval while calls through HAProxy keep succeeding.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentCheck, type AgentInput } from '../../src/http/agent-check.js';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

const HAPROXY = '/usr/sbin/haproxy';
const HAVE_HAPROXY = fs.existsSync(HAPROXY);
/** show servers state: srv_admin_state bit for a drain forced by an agent or the CLI (SRV_ADMF_FDRAIN). */
const FDRAIN = 0x08;

/** Answers its name; waits ?ms= first (a call that stays in flight). */
const WHO = (name: string): string => `export default { fetch: async (req) => {
  const ms = Number(new URL(req.url).searchParams.get('ms') ?? 0);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  return new Response('${name}');
} }`;

describe('the agent-check server', () => {
  it('answers every connection with the current state in one line, and survives peers that reset', async () => {
    let input: AgentInput = { stopping: false, available: [{ score: 0, inFlight: 0 }], known: 1 };
    const agent = await startAgentCheck({ host: '127.0.0.1', port: 0, state: () => input, log: () => {} });
    try {
      expect(await readLine(agent.port)).toBe('up ready 100%\n');
      // HAProxy resets the connection after reading: nothing breaks.
      await new Promise<void>((resolve) => {
        const s = net.connect(agent.port, '127.0.0.1', () => { s.resetAndDestroy(); resolve(); });
      });
      input = { ...input, available: [] };
      expect(await readLine(agent.port)).toBe('down ready #no worker is connected and reporting (0 of 1)\n');
      input = { ...input, stopping: true };
      expect(await readLine(agent.port)).toBe('up drain\n');
    } finally {
      agent.close();
    }
  });

  it('refuses a port in use with an error naming --agent-port', async () => {
    const taken = await startAgentCheck({ host: '127.0.0.1', port: 0, state: () => ({ stopping: true, available: [], known: 0 }), log: () => {} });
    try {
      await expect(startAgentCheck({ host: '127.0.0.1', port: taken.port, state: () => ({ stopping: true, available: [], known: 0 }), log: () => {} }))
        .rejects.toThrow(`--agent-port ${taken.port}: cannot listen on 127.0.0.1:${taken.port} (EADDRINUSE)`);
    } finally {
      taken.close();
    }
  });
});

describe.skipIf(!HAVE_HAPROXY)(HAVE_HAPROXY ? 'two gateways behind HAProxy with agent-check'
  : 'two gateways behind HAProxy with agent-check (skipped: /usr/sbin/haproxy is not installed; apt-get install haproxy)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-haproxy-'));
  const statsSocket = path.join(dir, 'stats.sock');
  let g1: Gateway;
  let g2: Gateway;
  let g1b: Gateway | undefined;
  let haproxy: ChildProcess;
  let haproxyLog = '';
  let front: string;
  let agent1: number;
  let http1: number;

  beforeAll(async () => {
    agent1 = await freePort();
    const agent2 = await freePort();
    // A port bound explicitly, as in production: one the kernel picked (--port 0) cannot be bound
    // again while connections the gateway closed are in TIME_WAIT, and g1 is started again below.
    http1 = await freePort();
    [g1, g2] = await Promise.all([
      startGateway(['--agent-port', String(agent1), '--port', String(http1)], { workers: 1 }),
      startGateway(['--agent-port', String(agent2)], { workers: 1 }),
    ]);
    await Promise.all([deploy(g1, 'GET:/who', { runtime: 'node', code: WHO('g1') }), deploy(g2, 'GET:/who', { runtime: 'node', code: WHO('g2') })]);
    const frontPort = await freePort();
    front = `http://127.0.0.1:${frontPort}`;
    const cfg = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(cfg, exampleConfig({ statsSocket, frontPort, servers: [[http1, agent1], [Number(new URL(g2.http).port), agent2]] }));
    haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout!.on('data', (c: Buffer) => { haproxyLog += c.toString(); });
    haproxy.stderr!.on('data', (c: Buffer) => { haproxyLog += c.toString(); });
    await eventually(async () => (await stats(statsSocket)).has('gw2'), 5000).catch((err) => {
      throw new Error(`${String(err)}\nhaproxy: ${haproxyLog}`);
    });
  });

  afterAll(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    }
    await Promise.all([g1b?.stop(), g1?.stop(), g2?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('has both gateways UP, each weighted by its agent, and spreads calls over them', async () => {
    const both = await eventually(async () => {
      const s = await stats(statsSocket);
      return ['gw1', 'gw2'].every((n) => s.get(n)?.status === 'UP' && s.get(n)?.last_agt === 'via agent : up') ? s : undefined;
    }, 8000, 100);
    for (const n of ['gw1', 'gw2']) {
      const row = both.get(n)!;
      expect(row.check_status).toBe('L7OK'); // the HTTP check on the public port (OPTIONS / → 404 is an answer)
      expect(row.agent_status).toBe('L7OK');
      // The server's weight is 100 in the file, so the agent's N% is the weight itself.
      expect(Number(row.weight)).toBeGreaterThanOrEqual(1);
      expect(Number(row.weight)).toBeLessThanOrEqual(100);
    }
    expect(await readLine(agent1)).toMatch(/^up ready (100|[1-9]\d?)%\n$/);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${front}/who`);
      expect(res.status).toBe(200);
      seen.add(await res.text());
    }
    expect([...seen].sort()).toEqual(['g1', 'g2']);
  });

  it('lowers the weight of the gateway with calls in flight', async () => {
    // Three calls held on g1's one worker: its headroom is at most 1/4.
    const held = Array.from({ length: 3 }, () => fetch(`${g1.http}/who?ms=4000`));
    const s = await eventually(async () => {
      const now = await stats(statsSocket);
      return Number(now.get('gw1')?.weight) <= 25 ? now : undefined;
    }, 5000, 100);
    expect(Number(s.get('gw2')!.weight)).toBeGreaterThan(Number(s.get('gw1')!.weight));
    for (const res of await Promise.all(held)) expect(res.status).toBe(200);
    await eventually(async () => Number((await stats(statsSocket)).get('gw1')?.weight) > 25, 5000, 100);
  });

  it('takes a gateway whose workers are gone DOWN by its agent, with the reason, and back UP when one returns', async () => {
    const [worker] = await (await fetch(`${g2.admin}/workers`)).json();
    process.kill(worker.pid, 'SIGSTOP'); // stops reporting: out of the candidates in 1.1 s
    try {
      const down = await eventually(async () => {
        const row = (await stats(statsSocket)).get('gw2');
        return row?.status.startsWith('DOWN') ? row : undefined;
      }, 8000, 100);
      expect(down.last_agt).toBe('via agent : down (no worker is connected and reporting (0 of 1))');
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${front}/who`);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('g1');
      }
    } finally {
      try {
        process.kill(worker.pid, 'SIGCONT');
      } catch { /* killed as hung, and restarted */ }
    }
    // The worker resumes (or the gateway kills it as hung and starts another): `up` brings it back.
    await eventually(async () => (await stats(statsSocket)).get('gw2')?.status === 'UP', 20_000, 200);
  });

  it('drains a gateway that is shutting down while it finishes its calls, then restores a new one on the same ports', async () => {
    const slow = fetch(`${g1.http}/who?ms=3000`);
    await eventually(async () => (await (await fetch(`${g1.admin}/workers`)).json())[0]?.inFlight === 1, 5000);
    const exited = new Promise<number | null>((r) => g1.proc.once('exit', r));
    g1.proc.kill('SIGTERM');
    await eventually(async () => (await readLine(agent1)) === 'up drain\n', 5000); // once the signal is handled
    await eventually(async () => ((await serversState(statsSocket)).get('gw1')! & FDRAIN) !== 0, 5000, 100);
    // Drained (and soon DOWN: its public port is closed): HAProxy sends every call to g2.
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${front}/who`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('g2');
    }
    expect((await slow).status).toBe(200); // the call in flight finished
    expect(await exited).toBe(0);

    // The agent said drain last; a new gateway's first line, `up ready N%`, undoes it.
    g1b = await startGateway(['--agent-port', String(agent1), '--port', String(http1)], { workers: 1, dir: g1.dir });
    const back = await eventually(async () => {
      const [s, admin] = await Promise.all([stats(statsSocket), serversState(statsSocket)]);
      return s.get('gw1')?.status === 'UP' && (admin.get('gw1')! & FDRAIN) === 0 ? s.get('gw1') : undefined;
    }, 10_000, 100);
    expect(back!.last_agt).toBe('via agent : up');
    await eventually(async () => (await (await fetch(`${front}/who`)).text()) === 'g1', 5000);
  });

  it('marks a SIGKILLed gateway DOWN within about a check interval, and calls through HAProxy keep succeeding', async () => {
    const victim = g1b!;
    const t0 = performance.now();
    const exited = new Promise((r) => victim.proc.once('exit', r));
    victim.proc.kill('SIGKILL');
    await exited;
    // Every call from now on: before HAProxy has seen it (connections refused, retried on g2) and
    // after. (A call in flight at the kill is lost: the function may have run, so it is not retried.)
    const failed: string[] = [];
    let answered = 0;
    let calling = true;
    const caller = (async () => {
      while (calling) {
        const res = await fetch(`${front}/who`).catch((err: Error) => ({ status: 0, text: async () => `${err.message}: ${String(err.cause)}` }));
        if (res.status !== 200) failed.push(`${res.status} ${await res.text()}`);
        else answered++;
      }
    })();
    await eventually(async () => (await stats(statsSocket)).get('gw1')?.status.startsWith('DOWN'), 5000, 25);
    const downMs = performance.now() - t0;
    // inter 1s, then fastinter 250ms × fall 2: at most ~1.25 s on an idle machine; 2.5 s on a busy one.
    expect(downMs, `DOWN after ${Math.round(downMs)} ms`).toBeLessThan(2500);
    const before = answered;
    await eventually(async () => answered >= before + 10, 5000);
    calling = false;
    await caller;
    expect(failed).toEqual([]);
    expect(answered).toBeGreaterThan(10);
  });
});

/** examples/haproxy.cfg with this test's socket, front port and gateways; fails if the file no longer has what it replaces. */
function exampleConfig(o: { statsSocket: string; frontPort: number; servers: Array<[http: number, agent: number]> }): string {
  let cfg = fs.readFileSync(path.resolve('examples/haproxy.cfg'), 'utf8');
  const replace = (from: RegExp, to: string): void => {
    expect(cfg, `examples/haproxy.cfg has ${from}`).toMatch(from);
    cfg = cfg.replace(from, to);
  };
  replace(/stats socket \/run\/haproxy\/faas\.sock/, `stats socket ${o.statsSocket}`);
  replace(/^(\s*)bind :80$/m, `$1bind 127.0.0.1:${o.frontPort}`);
  o.servers.forEach(([http, agent], i) => {
    // A server's own agent-port wins over default-server's.
    replace(new RegExp(`^(\\s*)server gw${i + 1} \\S+$`, 'm'), `$1server gw${i + 1} 127.0.0.1:${http} agent-port ${agent}`);
  });
  return cfg;
}

/** `show stat` as rows by server name, each a record of its CSV columns. */
async function stats(socket: string): Promise<Map<string, Record<string, string>>> {
  const lines = (await runtimeApi(socket, 'show stat')).split('\n').filter(Boolean);
  const head = lines[0]!.replace(/^# /, '').split(',');
  const rows = new Map<string, Record<string, string>>();
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    if (cells[0] !== 'gateways') continue;
    rows.set(cells[1]!, Object.fromEntries(head.map((h, i) => [h, cells[i] ?? ''])));
  }
  return rows;
}

/** `show servers state gateways`: each server's srv_admin_state. */
async function serversState(socket: string): Promise<Map<string, number>> {
  const lines = (await runtimeApi(socket, 'show servers state gateways')).split('\n').filter((l) => l && !l.startsWith('#') && !/^\d+$/.test(l));
  // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state …
  return new Map(lines.map((l) => l.split(' ')).map((c) => [c[3]!, Number(c[6])]));
}

function runtimeApi(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.connect(socket, () => s.write(`${command}\n`));
    s.on('data', (c: Buffer) => { out += c.toString(); });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

/** What an agent-check port says to a new connection. */
function readLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.connect(port, '127.0.0.1');
    s.on('data', (c: Buffer) => { out += c.toString(); });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
