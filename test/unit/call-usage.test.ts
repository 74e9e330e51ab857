// Per-call accounting on the worker's side: the arithmetic over two reads of an instance's cgroup
// (call-usage.ts), the instance taking those reads around a call (instance.ts, with a fake
// sandbox and runtime host), and the kept-open reader of cgroup files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { callUsage } from '../../workers/call-usage.js';
import { CgroupNumberFile } from '../../workers/cgroup-files.js';
import type { CallOutcome } from '../../workers/call.js';
import { Instance } from '../../workers/instance.js';
import type { CgroupUsage, SandboxExit, SandboxProcess } from '../../workers/runners/runner.js';

const MiB = 1024 * 1024;
const usage = (cpuUsec: number, memoryMb: number, peakMb: number | undefined): CgroupUsage =>
  ({ cpuUsec, memoryBytes: memoryMb * MiB, peakBytes: peakMb === undefined ? undefined : peakMb * MiB });

describe('callUsage', () => {
  it('CPU is the difference of the two reads, in whole µs', () => {
    expect(callUsage(usage(1000, 40, 50), usage(201_000.4, 40, 50))?.cpuUs).toBe(200_000);
  });

  it('a peak that rose during the call is the call\'s peak', () => {
    expect(callUsage(usage(0, 40, 50), usage(10, 42, 110))).toEqual({ cpuUs: 10, memPeak: 110 * MiB });
  });

  it('a flat peak was set before the call: the larger of the two reads, never the old peak', () => {
    expect(callUsage(usage(0, 40, 300), usage(10, 45, 300))).toEqual({ cpuUs: 10, memPeak: 45 * MiB });
    expect(callUsage(usage(0, 48, 300), usage(10, 41, 300))).toEqual({ cpuUs: 10, memPeak: 48 * MiB });
  });

  it('without a kernel peak (undefined), the larger of the two reads', () => {
    expect(callUsage(usage(0, 40, undefined), usage(10, 64, undefined))).toEqual({ cpuUs: 10, memPeak: 64 * MiB });
    expect(callUsage(usage(0, 40, undefined), usage(10, 64, 80))).toEqual({ cpuUs: 10, memPeak: 64 * MiB }); // no peak to compare with
  });

  it('nothing when either read is absent', () => {
    expect(callUsage(undefined, usage(10, 1, 1))).toBeUndefined();
    expect(callUsage(usage(10, 1, 1), undefined)).toBeUndefined();
    expect(callUsage(undefined, undefined)).toBeUndefined();
  });

  it('leaves out a figure that makes no sense rather than report a wrong one', () => {
    expect(callUsage(usage(500, 40, 50), usage(100, 40, 50))).toEqual({ memPeak: 40 * MiB }); // CPU went backwards
    expect(callUsage(usage(0, NaN, undefined), usage(10, NaN, undefined))).toEqual({ cpuUs: 10 });
    expect(callUsage(usage(NaN, NaN, undefined), usage(10, NaN, undefined))).toBeUndefined();
  });
});

/** A sandbox whose runtime host the test plays: frames the instance writes are kept, frames pushed are the host's. */
function fakeSandbox(read: (() => CgroupUsage | undefined) | undefined): { sandbox: SandboxProcess; written: Buffer[]; host: Duplex } {
  const written: Buffer[] = [];
  const host = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, done) {
      written.push(chunk);
      done();
    },
  });
  const sandbox: SandboxProcess = {
    pid: 4242, via: 'test', channel: host, output: [], terminate() {}, kill() {},
    exited: new Promise<SandboxExit>(() => {}),
    ...(read && { usage: read }),
  };
  return { sandbox, written, host };
}

/** A frame from the host: u32 frame bytes, u32 meta bytes, JSON meta (instance-frames.ts). */
function hostFrame(meta: object): Buffer {
  const json = Buffer.from(JSON.stringify(meta));
  const head = Buffer.alloc(8);
  head.writeUInt32BE(4 + json.length, 0);
  head.writeUInt32BE(json.length, 4);
  return Buffer.concat([head, json]);
}

/** Runs one call on a fresh instance; `during` runs once the invoke frame is out, before the host answers. */
async function oneCall(read: (() => CgroupUsage | undefined) | undefined, during: () => void): Promise<CallOutcome> {
  const { sandbox, written, host } = fakeSandbox(read);
  const instance = new Instance('test#1.1', sandbox, 10, 5000, () => {});
  host.push(hostFrame({ t: 'ready' }));
  await instance.ready;
  const outcome = instance.invoke({ requestId: 'r1', method: 'GET', path: '/', query: '', headers: [] }, Buffer.alloc(0), 5000);
  await new Promise((resolve) => setImmediate(resolve)); // the instance writes its frames once per turn
  const sent = Buffer.concat(written);
  const id = (JSON.parse(sent.subarray(8, 8 + sent.readUInt32BE(4)).toString()) as { id: number }).id;
  during();
  host.push(hostFrame({ t: 'result', id, status: 200, headers: [] }));
  return outcome;
}

describe('Instance: usage around a call', () => {
  it('reads the cgroup as the call is sent and as its answer comes: CPU and a peak that rose', async () => {
    let now = usage(5_000, 30, 40);
    let reads = 0;
    const outcome = await oneCall(() => (reads++, now), () => (now = usage(205_000, 35, 96)));
    expect(reads).toBe(2);
    expect(outcome).toMatchObject({ ok: true, status: 200, usage: { cpuUs: 200_000, memPeak: 96 * MiB } });
  });

  it('with a flat peak, the larger of the two reads of memory', async () => {
    let now = usage(0, 30, 200);
    const outcome = await oneCall(() => now, () => (now = usage(1500, 33, 200)));
    expect(outcome.usage).toEqual({ cpuUs: 1500, memPeak: 33 * MiB });
  });

  it('reads once for all the calls that start, or end, in the same event-loop turn', async () => {
    let reads = 0;
    let now = usage(0, 10, 20);
    const { sandbox, written, host } = fakeSandbox(() => (reads++, now));
    const instance = new Instance('test#1.1', sandbox, 10, 5000, () => {});
    host.push(hostFrame({ t: 'ready' }));
    await instance.ready;
    const call = { requestId: 'r', method: 'GET', path: '/', query: '', headers: [] };
    const outcomes = [1, 2, 3].map(() => instance.invoke(call, Buffer.alloc(0), 5000));
    expect(reads).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    const sent = Buffer.concat(written);
    const ids: number[] = [];
    for (let at = 0; at < sent.length; at += 4 + sent.readUInt32BE(at)) {
      ids.push((JSON.parse(sent.subarray(at + 8, at + 8 + sent.readUInt32BE(at + 4)).toString()) as { id: number }).id);
    }
    now = usage(900, 12, 30);
    host.push(Buffer.concat(ids.map((id) => hostFrame({ t: 'result', id, status: 200, headers: [] })))); // three answers in one read
    const done = await Promise.all(outcomes);
    expect(reads).toBe(2);
    expect(done.map((o) => o.usage)).toEqual([1, 2, 3].map(() => ({ cpuUs: 900, memPeak: 30 * MiB })));
  });

  it('no usage where the sandbox has no usage(), or its reads give nothing or throw (a cgroup gone)', async () => {
    expect((await oneCall(undefined, () => {})).usage).toBeUndefined();
    expect((await oneCall(() => undefined, () => {})).usage).toBeUndefined();
    let gone = false;
    const outcome = await oneCall(() => {
      if (gone) throw Object.assign(new Error('ENODEV'), { code: 'ENODEV' });
      return usage(0, 1, 1);
    }, () => (gone = true));
    expect(outcome).toMatchObject({ ok: true, status: 200 });
    expect(outcome.usage).toBeUndefined();
  });
});

describe('CgroupNumberFile', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const file = (text: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-usage-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'f'), text);
    return path.join(dir, 'f');
  };

  it('reads the number again on every read, from the same open file', () => {
    const f = file('123456789\n');
    const reader = new CgroupNumberFile(f);
    expect(reader.read()).toBe(123456789);
    fs.writeFileSync(f, '987\n'); // same inode: what the kernel does for a cgroup file
    expect(reader.read()).toBe(987);
    reader.close();
    expect(reader.read()).toBeUndefined();
  });

  it('reads a key of a flat-keyed file (cpu.stat)', () => {
    const reader = new CgroupNumberFile(file('usage_usec 5000123\nuser_usec 4000000\nsystem_usec 1000123\nnr_periods 0\n'));
    expect(reader.read('usage_usec')).toBe(5000123);
    expect(reader.read('system_usec')).toBe(1000123);
    expect(reader.read('nr_periods')).toBe(0);
    expect(reader.read('usec')).toBeUndefined();
    expect(reader.read('nr_throttled')).toBeUndefined();
    reader.close();
  });

  it('is undefined for a file that is missing, empty or not a number', () => {
    expect(new CgroupNumberFile('/nonexistent/memory.peak').read()).toBeUndefined();
    expect(new CgroupNumberFile(file('')).read()).toBeUndefined();
    expect(new CgroupNumberFile(file('max\n')).read()).toBeUndefined();
  });
});
