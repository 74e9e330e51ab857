#!/usr/bin/env node
// What one worker load report costs the gateway. In process: decodeReport (src/protocol/report.ts,
// compiled: size, strict UTF-8, JSON.parse, every field checked and copied), and validateReport
// alone on an already parsed value. Fleet.onReport and MetricsSocket.onDatagram are private, so
// the rest of the path (accept: run dir + kill(pid, 0) for a worker the fleet did not spawn; the
// per-sender seq check; onReport: WorkerState update, a new warm Set) is timed only end to end,
// through public APIs: real datagrams from a node-unix-socket DgramSocket to the metrics socket of
// a real Fleet (constructed, never started, so no worker processes), waiting until the worker's
// report shows the last seq; and the same datagrams to a bare DgramSocket, the transport alone.
// tinybench, median per report; absolute figures vary with the machine: compare rows.
//
//   node scripts/micro/datagram.mjs
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Bench } from 'tinybench';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
if (!fs.existsSync(path.join(root, 'dist/src/fleet/fleet.js'))) {
  console.error('dist/src/fleet/fleet.js is missing: run npm run build first');
  process.exit(1);
}
const { encodeReport, decodeReport, validateReport } = await import(path.join(root, 'dist/src/protocol/report.js'));
const { Fleet, metricsSocketPath } = await import(path.join(root, 'dist/src/fleet/fleet.js'));
const { DgramSocket } = createRequire(path.join(root, 'package.json'))('node-unix-socket');

/** Datagrams sent per timed call: under net.unix.max_dgram_qlen (10 by default), so none waits in the sender. */
const BATCH = 8;
/** In-process calls are about a microsecond: each timed call does this many. */
const REPEAT = 256;
const WORKER = 'w-bench';

// Sockets close with the process; the folder holding their files must be removed.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-micro-dgram-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/** A report as a worker's Reporter builds it (~240 B): this process stands in for the worker. */
const workerSocket = path.join(dir, `${WORKER}.sock`);
let seq = 0;
const nextReport = () => ({
  v: 1, id: WORKER, pid: process.pid, socket: workerSocket, cpu: 12.34, mem: 5.67, io: 0.12, score: 7.92,
  seq: seq++, time: Date.now(), warm: ['GET:/hello', 'POST:/echo', 'GET:/t7/fn-1234', 'POST:/t42/fn-98765'],
});

const datagram = encodeReport(nextReport());
const parsed = JSON.parse(datagram.toString('utf8'));
if (!decodeReport(datagram).ok) throw new Error('the sample report does not decode');

// The worker's stream socket, so the connection onReport opens to it succeeds and stays open.
const workerServer = net.createServer((conn) => conn.on('error', () => {})).listen(workerSocket);
await new Promise((resolve) => workerServer.once('listening', resolve));
const fleet = new Fleet({ runDir: dir, workers: 0, reportMs: 500, log: () => {} });
const fleetPath = metricsSocketPath(dir);
const transport = new DgramSocket();
const transportPath = path.join(dir, 'transport.sock');
transport.bind(transportPath);
let transportReceived = 0;
transport.on('data', () => transportReceived++);
const sender = new DgramSocket();

/** Sends BATCH fresh reports to `dest`, then yields event-loop turns until `arrived(lastSeq)`. */
const sendBatch = async (dest, arrived) => {
  let last;
  for (let i = 0; i < BATCH; i++) {
    const report = nextReport();
    const buf = encodeReport(report);
    // The library answers at once when the kernel took the datagram, later when it had to queue it.
    let answer;
    sender.sendTo(buf, 0, buf.length, dest, (err) => {
      answer = err ?? null;
    });
    if (answer === undefined) throw new Error(`${dest}: the datagram queue is full`);
    if (answer) throw answer;
    last = report.seq;
  }
  while (!arrived(last)) await nextTurn();
};
const fleetApplied = (last) => fleet.workers.get(WORKER)?.report?.seq === last;
// The first reports make the worker join and open its stream connection: steady state from then on.
await sendBatch(fleetPath, fleetApplied);
for (let turns = 0; !fleet.workers.get(WORKER).connected; turns++) {
  if (turns > 1000) throw new Error('the fleet did not connect to the worker socket');
  await nextTurn();
}

const bench = new Bench({ time: 500, warmupTime: 100, throws: true });
bench.add('decodeReport', () => {
  for (let i = 0; i < REPEAT; i++) if (!decodeReport(datagram).ok) throw new Error('dropped');
});
bench.add('validateReport', () => {
  for (let i = 0; i < REPEAT; i++) if (!validateReport(parsed).ok) throw new Error('dropped');
});
// async functions, so that tinybench awaits them (it tells async tasks by their kind).
bench.add('transport', async () => {
  const target = transportReceived + BATCH;
  await sendBatch(transportPath, () => transportReceived === target);
});
bench.add('fleet', async () => sendBatch(fleetPath, fleetApplied));
await bench.run();

const counters = fleet.datagramCounters();
if (counters.accepted !== counters.received) throw new Error(`the fleet dropped reports: ${JSON.stringify(counters.dropped)}`);
await fleet.stop();
for (const socket of [transport, sender, workerServer]) socket.close();
const perReport = Object.fromEntries(bench.tasks.map((t) => [t.name, (t.result.latency?.p50 ?? t.result.p50) * 1e6]));
perReport.decodeReport /= REPEAT;
perReport.validateReport /= REPEAT;
perReport.transport /= BATCH;
perReport.fleet /= BATCH;
const ROWS = [
  ['decodeReport(datagram): size, UTF-8, JSON.parse, field checks', 'decodeReport'],
  ['validateReport(parsed value): field checks and copy only', 'validateReport'],
  ['datagram to a bare DgramSocket: send + receive, the transport alone', 'transport'],
  ['datagram to a Fleet\'s metrics socket: send + receive + decode + accept + seq + onReport', 'fleet'],
];
console.log(`load report datagram, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/micro/datagram.mjs\n`);
console.log(`| step (report of ${datagram.length} B) | median per report | reports/s |`);
console.log('|---|---|---|');
for (const [label, name] of ROWS) {
  const ns = perReport[name];
  console.log(`| ${label} | ${ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`} | ${Math.round(1e9 / ns).toLocaleString('en')} |`);
}
console.log(`\nMeasured: the first two in process (${REPEAT} calls per timed call); the last two end to end on real Unix datagram sockets, ${BATCH} reports per timed call including encodeReport and sendTo on the sending side; their difference is roughly the gateway's own work (decode, accept with its kill(pid, 0), seq check, onReport), and carries the transport's noise.`);
