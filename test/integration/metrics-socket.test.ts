// Load reports over REAL Unix datagram sockets in a temp dir: a Reporter sampling this test
// process's real /proc sends to a MetricsSocket, and a raw DgramSocket plays the hostile or
// broken sender.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetricsSocket, type MetricsSocketOptions } from '../../src/fleet/metrics-socket.js';
import type { LogFields } from '../../src/protocol/log.js';
import type { WorkerReport } from '../../src/protocol/messages.js';
import { encodeReport } from '../../src/protocol/report.js';
import { ProcReader } from '../../workers/proc-stats.js';
import { Reporter, type ReporterOptions } from '../../workers/reporter.js';

const INTERVAL_MS = 40;

let dir: string;
let metricsPath: string;
let cleanup: (() => void)[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-metrics-'));
  metricsPath = path.join(dir, 'metrics.sock');
  cleanup = [];
});

afterEach(() => {
  for (const fn of cleanup.reverse()) fn();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function waitFor(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Received {
  report: WorkerReport;
  at: number;
}

function gateway(known: (r: WorkerReport) => boolean = (r) => r.id.startsWith('w')) {
  const received: Received[] = [];
  const logs: LogFields[] = [];
  const options: MetricsSocketOptions = {
    path: metricsPath,
    accept: (r) => (known(r) ? undefined : 'unknown_worker'),
    onReport: (report, at) => received.push({ report, at }),
    log: (fields) => logs.push(fields),
  };
  const socket = new MetricsSocket(options);
  cleanup.push(() => socket.close());
  return { socket, received, logs };
}

function reporter(id: string, extra: Partial<ReporterOptions> = {}) {
  const lines: string[] = [];
  const r = new Reporter({
    id,
    socketPath: path.join(dir, `worker-${id}.sock`),
    gatewayMetricsPath: metricsPath,
    intervalMs: INTERVAL_MS,
    reader: new ProcReader(),
    childPids: () => [],
    warmKeys: () => ['GET:/hello'],
    now: Date.now,
    log: (line) => lines.push(line),
    ...extra,
  });
  cleanup.push(() => r.stop());
  return { r, lines };
}

function raw(): (buf: Buffer) => void {
  const sock = new DgramSocket();
  cleanup.push(() => sock.close());
  return (buf) => sock.sendTo(buf, 0, buf.length, metricsPath);
}

const report = (over: Partial<WorkerReport>): WorkerReport => ({
  v: 1, id: 'w-raw', pid: process.pid, socket: path.join(dir, 'worker-w-raw.sock'),
  cpu: 1, mem: 2, io: 3, score: 1.7, seq: 0, time: Date.now(), warm: [], ...over,
});

describe('Reporter → MetricsSocket', () => {
  it('delivers reports of the real process tree with seq 0, 1, 2, …', async () => {
    const gw = gateway();
    const { r } = reporter('w1');
    r.start();
    await waitFor('3 reports', () => gw.received.length >= 3);
    const seqs = gw.received.map((x) => x.report.seq);
    expect(seqs.slice(0, 3)).toEqual([0, 1, 2]);
    const first = gw.received[0]!.report;
    expect(first).toMatchObject({ v: 1, id: 'w1', pid: process.pid, socket: path.join(dir, 'worker-w1.sock'), warm: ['GET:/hello'] });
    for (const part of [first.cpu, first.mem, first.io, first.score]) expect(part).toBeGreaterThanOrEqual(0);
    expect(first.mem).toBeGreaterThan(0); // this process's RSS is real
    expect(r.last()).toBeDefined();
    expect(r.counters()).toMatchObject({ failed: 0, errors: 0 });
    expect(gw.socket.counters().accepted).toBe(gw.received.length);
    expect(fs.statSync(metricsPath).mode & 0o777).toBe(0o600);
  });

  it('drops and counts a worker the fleet does not know', async () => {
    const gw = gateway();
    const { r } = reporter('stranger');
    r.start();
    await waitFor('a drop', () => gw.socket.counters().dropped.unknown_worker >= 2);
    expect(gw.received).toEqual([]);
    expect(gw.logs.filter((l) => l.reason === 'unknown_worker')).toHaveLength(1); // rate-limited
    expect(gw.logs[0]).toMatchObject({ level: 'warn', reason: 'unknown_worker', worker: 'stranger' });
  });

  it('drops replayed and reordered datagrams', async () => {
    const gw = gateway();
    const send = raw();
    for (const seq of [5, 5, 3, 6]) send(encodeReport(report({ seq })));
    await waitFor('4 datagrams', () => gw.socket.counters().received === 4);
    expect(gw.received.map((x) => x.report.seq)).toEqual([5, 6]);
    expect(gw.socket.counters().dropped.replayed).toBe(2);
    // a restarted worker (new pid) starts again at 0
    send(encodeReport(report({ seq: 0, pid: process.pid + 1 })));
    await waitFor('the restarted worker', () => gw.received.length === 3);
  });

  it('drops garbage and oversized datagrams and keeps taking good ones', async () => {
    const gw = gateway();
    const send = raw();
    send(Buffer.from([0xff, 0x00, 0xfe, 0x01]));
    send(Buffer.from('{"v":1,"id":'));
    send(Buffer.alloc(0));
    send(Buffer.alloc(5000, 0x7b));
    send(Buffer.alloc(70_000, 0x20)); // the library truncates at 64 KiB; still oversized
    send(Buffer.from(JSON.stringify({ ...report({}), v: 2 })));
    send(Buffer.from(JSON.stringify({ ...report({}), cpu: 'high' })));
    send(encodeReport(report({ seq: 1 })));
    await waitFor('the good one', () => gw.received.length === 1);
    expect(gw.socket.counters()).toEqual({
      received: 8,
      accepted: 1,
      dropped: { oversized: 2, malformed: 3, bad_version: 1, bad_field: 1, unknown_worker: 0, replayed: 0 },
    });
    expect(gw.logs.find((l) => l.reason === 'bad_field')).toMatchObject({ field: 'cpu' });
    expect(gw.logs.filter((l) => l.reason === 'malformed')).toHaveLength(1);
  });

  it('keeps a reporter running until the gateway binds, then delivers', async () => {
    const { r, lines } = reporter('w2');
    r.start();
    await waitFor('failed sends', () => r.counters().failed >= 3);
    expect(lines).toHaveLength(1); // one line per 10 s, not one per failure
    expect(lines[0]).toMatch(/cannot send load reports to .*metrics\.sock/);
    const gw = gateway();
    await waitFor('a report', () => gw.received.length >= 2);
    const [a, b] = gw.received.map((x) => x.report.seq);
    expect(b).toBe(a! + 1);
    expect(lines.at(-1)).toMatch(/delivering load reports .* again/);
  });

  it('drops the reports a gateway that stopped reading has no room for, instead of queueing them', async () => {
    // a "gateway" that binds and never reads: the kernel queues 10 (max_dgram_qlen), then
    // node-unix-socket would queue every later datagram in the worker's memory and retry it in a busy loop
    const stalled = spawn('/usr/bin/python3', ['-c',
      `import socket,sys,time\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('up',flush=True)\ntime.sleep(30)`,
      metricsPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(() => stalled.kill('SIGKILL'));
    await new Promise((resolve) => stalled.stdout!.once('data', resolve));
    const { r } = reporter('w3');
    r.start();
    await waitFor('skipped reports', () => r.counters().skipped >= 5);
    const { sent, failed } = r.counters();
    expect(sent).toBeGreaterThanOrEqual(10);
    expect(sent).toBeLessThanOrEqual(12);
    expect(failed).toBe(0);
  });

  it('delivers a burst from 100 workers while the gateway is busy', async () => {
    const gw = gateway();
    const senders = Array.from({ length: 100 }, () => raw());
    senders.forEach((send, i) => send(encodeReport(report({ id: `w${i}` }))));
    const until = Date.now() + 300;
    while (Date.now() < until); // the gateway's loop is blocked; the kernel queue holds 10
    await waitFor('100 reports', () => gw.received.length === 100);
    expect(gw.socket.counters().dropped).toMatchObject({ oversized: 0, malformed: 0 });
  });
});

describe('MetricsSocket path', () => {
  it('replaces a stale socket file, refuses a live one and other files, unlinks on close', () => {
    const first = new MetricsSocket({ path: metricsPath, accept: () => undefined, onReport: () => {}, log: () => {} });
    expect(() => new MetricsSocket({ path: metricsPath, accept: () => undefined, onReport: () => {}, log: () => {} }))
      .toThrow(/another process is receiving/);
    first.close();
    expect(fs.existsSync(metricsPath)).toBe(false);

    // a gateway that died without closing leaves the file behind
    const dead = new DgramSocket();
    dead.bind(metricsPath);
    dead.close();
    expect(fs.existsSync(metricsPath)).toBe(true);
    const second = gateway();
    expect(second.socket.counters().received).toBe(0);
    second.socket.close();

    fs.writeFileSync(metricsPath, 'not a socket');
    expect(() => gateway()).toThrow(/is not a socket/);
  });
});

describe('ProcReader on the real /proc', () => {
  it('counts a child process while it runs and after it is reaped', async () => {
    const reader = new ProcReader();
    const before = reader.sampleTree(process.pid, []);
    expect(before.processes).toBeGreaterThanOrEqual(1);
    // burns 300 ms of CPU time, then waits to be sampled
    const child = spawn(process.execPath, ['-e',
      'const t=process.cpuUsage();while(process.cpuUsage(t).user<300e3);console.log("done");setTimeout(()=>{},5000)'],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    cleanup.push(() => child.kill('SIGKILL'));
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    expect(reader.descendants([process.pid])).toContain(child.pid);
    const running = reader.sampleTree(process.pid, []);
    expect(running.cpuTicks - before.cpuTicks).toBeGreaterThanOrEqual(25);
    expect(running.processes).toBeGreaterThan(before.processes);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const reaped = reader.sampleTree(process.pid, []);
    expect(reaped.cpuTicks).toBeGreaterThanOrEqual(running.cpuTicks); // moved into our cutime
  });
});
