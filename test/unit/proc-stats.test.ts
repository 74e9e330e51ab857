// /proc parsing on files captured from a real machine, and the process-tree walk on a fake /proc
// where processes fork, vanish mid-scan and hide their io from us.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FULL_SCAN_EVERY,
  parseCoreTimes,
  parseIo,
  parseStat,
  parseStatusRssKb,
  ProcReader,
  type ProcFs,
} from '../../workers/proc-stats.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/proc/${name}`, import.meta.url), 'latin1');

describe('parseStat', () => {
  it('reads a node process captured from /proc/self/stat', () => {
    expect(parseStat(fixture('node-self.stat'))).toEqual({
      pid: 4697,
      comm: 'node',
      state: 'R',
      ppid: 4694,
      utimeTicks: 9,
      stimeTicks: 2,
      cutimeTicks: 0,
      cstimeTicks: 0,
      rssPages: 10012,
    });
  });

  it('splits at the last ")" when comm holds ") (" and spaces', () => {
    const stat = parseStat(fixture('crafted-comm.stat'));
    expect(stat).toMatchObject({ pid: 4697, comm: 'x) R 1 (y z', state: 'R', ppid: 4694, utimeTicks: 9 });
  });

  it('reads a comm with a newline and trailing parentheses', () => {
    const line = fixture('node-self.stat').replace('(node)', '(a\nb())');
    expect(parseStat(line)).toMatchObject({ comm: 'a\nb()', ppid: 4694, stimeTicks: 2 });
  });

  it('reads a kernel thread and a zombie', () => {
    expect(parseStat(fixture('kthreadd.stat'))).toMatchObject({ pid: 2, comm: 'kthreadd', ppid: 0, rssPages: 0 });
    expect(parseStat(fixture('zombie.stat'))).toMatchObject({ comm: 'sleep', state: 'Z', ppid: 4727 });
  });

  it('returns undefined for text that is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('garbage')).toBeUndefined();
    expect(parseStat('12 (truncated')).toBeUndefined();
    expect(parseStat('12 (short) R 1 2 3')).toBeUndefined();
    expect(parseStat('x (node) R 1 1 1 0 -1 0 0 0 0 0 9 2 0 0 20 0 7 0 1 1 1')).toBeUndefined();
    expect(parseStat('12 (node) R one 1 1 0 -1 0 0 0 0 0 9 2 0 0 20 0 7 0 1 1 1')).toBeUndefined();
  });

  it('leaves rssPages out of a line cut before field 24', () => {
    const cut = fixture('node-self.stat').split(' ').slice(0, 20).join(' ');
    const stat = parseStat(cut);
    expect(stat).toMatchObject({ utimeTicks: 9 });
    expect(stat?.rssPages).toBeUndefined();
  });
});

describe('parseCoreTimes', () => {
  const stat = [
    'cpu  300 10 200 5000 40 7 3 2 0 0',
    'cpu0 100 0 50 2500 20 2 1 1 0 0',
    'cpu1 200 10 150 2500 20 5 2 1 0 0',
    'intr 12345',
  ].join('\n');

  it('sums busy (user nice system irq softirq steal) and total (+ idle iowait) of the CPUs asked for', () => {
    expect(parseCoreTimes(stat, [0])).toEqual({ busyTicks: 154, totalTicks: 2674 });
    expect(parseCoreTimes(stat, [0, 1])).toEqual({ busyTicks: 154 + 368, totalTicks: 2674 + 2888 });
    expect(parseCoreTimes(stat, [1])!.busyTicks).toBe(368); // the aggregate "cpu" line is never taken for a CPU
  });

  it('is undefined for a CPU that is not there or a malformed line', () => {
    expect(parseCoreTimes(stat, [2])).toBeUndefined();
    expect(parseCoreTimes('cpu0 1 2 3', [0])).toBeUndefined();
    expect(parseCoreTimes('cpu0 1 2 3 x 5 6 7 8', [0])).toBeUndefined();
  });

  it('reads this machine\'s /proc/stat (captured fixture)', () => {
    const times = parseCoreTimes(fixture('stat'), [0]);
    expect(times!.totalTicks).toBeGreaterThan(times!.busyTicks);
    expect(times!.busyTicks).toBeGreaterThan(0);
  });
});

describe('parseStatusRssKb', () => {
  it('reads VmRSS in kB', () => {
    expect(parseStatusRssKb(fixture('node-self.status'))).toBe(40500);
  });
  it('is undefined for kernel threads and zombies, which have no VmRSS', () => {
    expect(parseStatusRssKb(fixture('kthreadd.status'))).toBeUndefined();
    expect(parseStatusRssKb(fixture('zombie.status'))).toBeUndefined();
  });
});

describe('parseIo', () => {
  it('reads read_bytes and write_bytes, not rchar/wchar', () => {
    expect(parseIo(fixture('node-self.io'))).toEqual({ readBytes: 27418624, writeBytes: 8192 });
  });
  it('is undefined when the fields are missing', () => {
    expect(parseIo('rchar: 1\nwchar: 2\n')).toBeUndefined();
    expect(parseIo('')).toBeUndefined();
  });
});

interface FakeProc {
  ppid: number;
  utime?: number;
  stime?: number;
  cutime?: number;
  cstime?: number;
  rssKb?: number;
  /** undefined: /proc/PID/io unreadable (another uid, EACCES). */
  io?: [read: number, write: number];
  /** Listed by listPids, gone by the time its files are read. */
  vanishes?: boolean;
}

/** A /proc made of FakeProcs; counts stat reads per pid. */
class FakeProcFs implements ProcFs {
  readonly statReads = new Map<number, number>();
  constructor(readonly procs: Map<number, FakeProc>) {}

  listPids(): number[] {
    return [...this.procs.keys()];
  }

  readFile(path: string): string | undefined {
    const [, pidText, file] = path.split('/').slice(1);
    const pid = Number(pidText);
    const p = this.procs.get(pid);
    if (!p || p.vanishes) return undefined;
    if (file === 'stat') {
      this.statReads.set(pid, (this.statReads.get(pid) ?? 0) + 1);
      const t = [p.utime ?? 0, p.stime ?? 0, p.cutime ?? 0, p.cstime ?? 0].join(' ');
      return `${pid} (fn (${pid})) S ${p.ppid} 1 1 0 -1 0 0 0 0 0 ${t} 20 0 1 0 100 1000 7 18446744073709551615 0 0\n`;
    }
    if (file === 'status') return p.rssKb === undefined ? 'Name:\tfn\n' : `Name:\tfn\nVmRSS:\t${p.rssKb} kB\n`;
    if (file === 'io') return p.io ? `rchar: 99\nread_bytes: ${p.io[0]}\nwrite_bytes: ${p.io[1]}\n` : undefined;
    return undefined;
  }
}

// init(1) ─┬─ worker(100) ─┬─ bwrap(200) ── bwrap-init(201) ─┬─ fn(202)
//          │               │                                └─ fn(203, vanishes mid-scan)
//          │               └─ bwrap(300) ── fn(301)
//          ├─ other(50) ── other(51)
//          └─ bwrap(400, reparented to init: an extra root) ── fn(401)
function tree(): Map<number, FakeProc> {
  return new Map<number, FakeProc>([
    [1, { ppid: 0, utime: 5000, rssKb: 9000, io: [1, 1] }],
    [50, { ppid: 1, utime: 7000, rssKb: 9000, io: [1, 1] }],
    [51, { ppid: 50, utime: 7000, rssKb: 9000, io: [1, 1] }],
    [100, { ppid: 1, utime: 10, stime: 5, cutime: 3, cstime: 2, rssKb: 1000, io: [100, 50] }],
    [200, { ppid: 100, utime: 1, rssKb: 10 }],
    [201, { ppid: 200, utime: 1, cutime: 40, rssKb: 20 }],
    [202, { ppid: 201, utime: 100, stime: 20, rssKb: 30000 }],
    [203, { ppid: 201, utime: 999, rssKb: 999, vanishes: true }],
    [300, { ppid: 100, utime: 2, rssKb: 10 }],
    [301, { ppid: 300, utime: 30, rssKb: 5000, io: [4096, 0] }],
    [400, { ppid: 1, utime: 3, rssKb: 10 }],
    [401, { ppid: 400, stime: 7, rssKb: 100, io: [0, 8192] }],
  ]);
}

describe('ProcReader', () => {
  it('finds children and grandchildren, skipping a process that vanished', () => {
    const reader = new ProcReader(new FakeProcFs(tree()));
    expect(reader.descendants([100]).sort()).toEqual([200, 201, 202, 300, 301]);
    expect(reader.descendants([100, 400]).sort()).toEqual([200, 201, 202, 300, 301, 401]);
    expect(reader.descendants([999])).toEqual([]);
  });

  it('sums cpu (with reaped children), rss and io over the tree and the extra roots', () => {
    const reader = new ProcReader(new FakeProcFs(tree()));
    const sample = reader.sampleTree(100, [400]);
    expect(sample).toEqual({
      // 100: 10+5+3+2, 200: 1, 201: 1+40, 202: 120, 300: 2, 301: 30, 400: 3, 401: 7
      cpuTicks: 20 + 1 + 41 + 120 + 2 + 30 + 3 + 7,
      rssBytes: (1000 + 10 + 20 + 30000 + 10 + 5000 + 10 + 100) * 1024,
      // io unreadable for the sandboxes that hide it (200, 201, 202, 300, 400)
      ioBytes: 150 + 4096 + 8192,
      processes: 8,
    });
    expect(reader.clockTicksPerSecond).toBe(100);
  });

  it('never throws for roots that are gone or never existed', () => {
    const reader = new ProcReader(new FakeProcFs(tree()));
    expect(reader.sampleTree(203, [])).toEqual({ cpuTicks: 0, rssBytes: 0, ioBytes: 0, processes: 0 });
    expect(reader.sampleTree(12345, [67890])).toEqual({ cpuTicks: 0, rssBytes: 0, ioBytes: 0, processes: 0 });
  });

  it('re-reads only new pids and tree members between full scans', () => {
    const procs = tree();
    const fs = new FakeProcFs(procs);
    const reader = new ProcReader(fs);
    reader.sampleTree(100, []);
    expect(fs.statReads.get(50)).toBe(1);
    expect(fs.statReads.get(202)).toBe(1); // read once by the scan, reused for the sum

    procs.set(204, { ppid: 202, utime: 11, rssKb: 1 }); // a function forks
    procs.get(301)!.ppid = 1; // a member escapes to init (its parent died unreaped)
    procs.delete(300);
    expect(reader.sampleTree(100, [])).toMatchObject({ processes: 5, cpuTicks: 20 + 1 + 41 + 120 + 11 });
    expect(fs.statReads.get(50)).toBe(1); // outside the tree: its ppid is cached
    expect(fs.statReads.get(204)).toBe(1);
    expect(fs.statReads.get(202)).toBe(2);
    expect(reader.descendants([100]).sort()).toEqual([200, 201, 202, 204]);
  });

  it('scans everything again for a root it has not walked, and every FULL_SCAN_EVERY scans', () => {
    const fs = new FakeProcFs(tree());
    const reader = new ProcReader(fs);
    reader.sampleTree(100, []);
    reader.sampleTree(100, []);
    expect(fs.statReads.get(51)).toBe(1);
    expect(reader.sampleTree(100, [50]).processes).toBe(8); // 100's tree without 203, plus 50 and 51
    expect(fs.statReads.get(51)).toBe(2);
    for (let i = 3; i < FULL_SCAN_EVERY; i++) reader.sampleTree(100, [50]);
    expect(fs.statReads.get(1)).toBe(2);
    reader.sampleTree(100, [50]);
    expect(fs.statReads.get(1)).toBe(3);
  });
});
