#!/usr/bin/env node
// The Node side of the native floors: each stage does in Node what one C program in this folder
// does, the way the gateway and its workers do it, and prints the same lines as that program
// (so scripts/bench-native.mjs reads both with one pattern). Same method as the C floors: a
// warm-up of N/10 (at least 10) discarded iterations, then N timed ones, nearest-rank median and
// p99 of process.hrtime.bigint() (CLOCK_MONOTONIC, like clock_gettime in C).
//
//   node native-bench/node-equivalents.mjs STAGE [N]
//
//   unix-stream [20000]  100-byte ping-pong between two Node processes over a Unix stream socket
//                        (node:net), round trip in µs                          (C: unix-rtt.c)
//   dgram [20000]        200-byte ping-pong between two Node processes over AF_UNIX SOCK_DGRAM
//                        sockets (node-unix-socket's DgramSocket, as the workers' load reports),
//                        round trip in µs, then the sendTo() call alone in ns, to its own
//                        socket with nobody waiting, as in the C floor          (C: dgram-rtt.c)
//   proc [20000]         fs.readFileSync(…, 'latin1') of /proc/self/stat, status and io, as a
//                        worker samples them, ns per file and for the three       (C: proc-read.c)
//   spawn [500]          child_process.spawnSync('/bin/true'), µs                 (C: fork-exec.c)
//
// The echoing end of the two socket stages is a second Node process (this file, forked with an
// IPC channel); it exits when that channel closes, so it never outlives this one. Socket files
// live in a fresh directory under os.tmpdir() ($TMPDIR), removed on exit and on SIGINT/SIGTERM.
import { fork, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DgramSocket } from 'node-unix-socket';

const self = fileURLToPath(import.meta.url);
const STREAM_BYTES = 100; // as unix-rtt.c
const DGRAM_BYTES = 200; // as dgram-rtt.c
const PROC_FILES = ['/proc/self/stat', '/proc/self/status', '/proc/self/io'];
const STAGES = {
  'unix-stream': { run: unixStream, defaultN: 20_000 },
  dgram: { run: dgram, defaultN: 20_000 },
  proc: { run: proc, defaultN: 20_000 },
  spawn: { run: spawn, defaultN: 500 },
};

const warmupOf = (n) => Math.max(10, Math.floor(n / 10));
const now = () => process.hrtime.bigint();

/** Nearest-rank percentile of sorted samples, as floor_percentile in floor.h. */
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
const sortNs = (samples) => Float64Array.from(samples).sort();
const us = (ns) => (ns / 1e3).toFixed(1);

// ---------------------------------------------------------------------------------------------
// The echoing ends (run in the forked child)

function echoStream(socketPath) {
  const socket = net.connect(socketPath, () => process.send('ready'));
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => process.exit(1));
}

function echoDgram(selfPath, peerPath) {
  const socket = new DgramSocket();
  socket.bind(selfPath);
  socket.on('data', (buf) => socket.sendTo(buf, 0, buf.length, peerPath, (err) => { if (err) process.exit(1); }));
  socket.on('error', () => process.exit(1));
  process.send('ready');
}

// ---------------------------------------------------------------------------------------------
// The measuring end

let tmpDir;
let echoChild;
process.on('exit', () => {
  try { echoChild?.kill('SIGKILL'); } catch {}
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** A fresh directory for socket files, removed on exit. */
function makeTmpDir(stage) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `node-${stage}-`));
  return tmpDir;
}

/** Forks the echoing end with `args` and resolves once it says it is ready; rejects if it exits first. */
function startEcho(args) {
  echoChild = fork(self, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((_, reject) => {
    echoChild.once('exit', (code, signal) => reject(new Error(`the echoing Node process exited (${signal ?? `code ${code}`})`)));
  });
  exited.catch(() => {}); // observed through `ready` and the measuring loop
  const ready = Promise.race([new Promise((resolve) => echoChild.once('message', resolve)), exited]);
  return { ready, exited };
}

async function unixStream(n) {
  const warm = warmupOf(n);
  const sockPath = path.join(makeTmpDir('unix-stream'), 'stream.sock');
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once('error', reject).listen(sockPath, resolve));
  const accepted = new Promise((resolve) => server.once('connection', resolve));
  const echo = startEcho(['--echo-stream', sockPath]);
  await echo.ready;
  const socket = await accepted;
  server.close();

  const buf = Buffer.alloc(STREAM_BYTES, 'x');
  const samples = new Float64Array(n);
  let got = 0;
  let i = 0;
  let t0 = 0n;
  await new Promise((resolve, reject) => {
    echo.exited.catch(reject);
    socket.on('error', reject);
    const send = () => {
      got = 0;
      t0 = now();
      socket.write(buf);
    };
    socket.on('data', (chunk) => {
      got += chunk.length;
      if (got < STREAM_BYTES) return; // the answer came in pieces: wait for the rest
      const t = now();
      if (i >= warm) samples[i - warm] = Number(t - t0);
      if (++i === warm + n) resolve();
      else send();
    });
    send();
  });
  socket.destroy();
  const s = sortNs(samples);
  console.log(`unix stream round trip (node:net), ${STREAM_BYTES} B, ${n} runs after ${warm} warm-up: median ${us(pct(s, 50))} us, p99 ${us(pct(s, 99))} us`);
}

async function dgram(n) {
  const warm = warmupOf(n);
  const dir = makeTmpDir('dgram');
  const selfPath = path.join(dir, 'parent.sock');
  const peerPath = path.join(dir, 'child.sock');
  const socket = new DgramSocket();
  socket.bind(selfPath);
  const echo = startEcho(['--echo-dgram', peerPath, selfPath]);
  await echo.ready;

  const buf = Buffer.alloc(DGRAM_BYTES, 'x');
  const rtt = new Float64Array(n);
  const onSent = (err) => { if (err) socket.emit('error', err); };
  let i = 0;
  let t0 = 0n;
  await new Promise((resolve, reject) => {
    echo.exited.catch(reject);
    socket.on('error', reject);
    const send = () => {
      t0 = now();
      socket.sendTo(buf, 0, DGRAM_BYTES, peerPath, onSent);
    };
    socket.on('data', (answer) => {
      const t = now();
      if (answer.length !== DGRAM_BYTES) return reject(new Error(`the echoing end answered ${answer.length} bytes, not ${DGRAM_BYTES}`));
      if (i >= warm) rtt[i - warm] = Number(t - t0);
      if (++i === warm + n) resolve();
      else send();
    });
    send();
  });

  // sendTo() alone, as in dgram-rtt.c: to this process's own socket, which nobody sleeps on
  // while the call runs; each datagram is received (untimed) before the next is sent.
  const sendNs = new Float64Array(n);
  const failed = new Promise((_, reject) => socket.once('error', reject));
  failed.catch(() => {}); // observed in the race below
  let arrived;
  socket.removeAllListeners('data');
  socket.on('data', () => arrived());
  for (i = 0; i < warm + n; i++) {
    const back = new Promise((resolve) => { arrived = resolve; });
    const start = now();
    socket.sendTo(buf, 0, DGRAM_BYTES, selfPath, onSent);
    const end = now();
    await Promise.race([back, failed]);
    if (i >= warm) sendNs[i - warm] = Number(end - start);
  }
  socket.close();
  const r = sortNs(rtt);
  const s = sortNs(sendNs);
  console.log(`unix datagram round trip (node-unix-socket), ${DGRAM_BYTES} B, ${n} runs after ${warm} warm-up: median ${us(pct(r, 50))} us, p99 ${us(pct(r, 99))} us`);
  console.log(`unix datagram sendto alone (DgramSocket.sendTo), no receiver woken, ${DGRAM_BYTES} B, ${n} runs after ${warm} warm-up: median ${pct(s, 50)} ns, p99 ${pct(s, 99)} ns`);
}

function proc(n) {
  const warm = warmupOf(n);
  const perFile = PROC_FILES.map(() => new Float64Array(n));
  const all = new Float64Array(n);
  const t = new Array(PROC_FILES.length + 1);
  for (let i = 0; i < warm + n; i++) {
    t[0] = now();
    for (let f = 0; f < PROC_FILES.length; f++) {
      if (fs.readFileSync(PROC_FILES[f], 'latin1').length === 0) throw new Error(`${PROC_FILES[f]} read empty (expected at least one line)`);
      t[f + 1] = now();
    }
    if (i < warm) continue;
    for (let f = 0; f < PROC_FILES.length; f++) perFile[f][i - warm] = Number(t[f + 1] - t[f]);
    all[i - warm] = Number(t[PROC_FILES.length] - t[0]);
  }
  PROC_FILES.forEach((file, f) => {
    const s = sortNs(perFile[f]);
    console.log(`fs.readFileSync latin1 ${file}, ${n} runs after ${warm} warm-up: median ${pct(s, 50)} ns, p99 ${pct(s, 99)} ns`);
  });
  const s = sortNs(all);
  console.log(`all three files, ${n} runs after ${warm} warm-up: median ${pct(s, 50)} ns, p99 ${pct(s, 99)} ns`);
}

function spawn(n) {
  const warm = warmupOf(n);
  const samples = new Float64Array(n);
  for (let i = 0; i < warm + n; i++) {
    const t0 = now();
    const r = spawnSync('/bin/true', [], { stdio: 'inherit' }); // inherits stdio, as the C child does
    const t1 = now();
    if (r.status !== 0) throw new Error(`spawnSync /bin/true: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}`);
    if (i >= warm) samples[i - warm] = Number(t1 - t0);
  }
  const s = sortNs(samples);
  console.log(`child_process.spawnSync /bin/true, ${n} runs after ${warm} warm-up: median ${us(pct(s, 50))} us, p99 ${us(pct(s, 99))} us`);
}

// ---------------------------------------------------------------------------------------------

const [stage, raw] = process.argv.slice(2);
if (stage === '--echo-stream') echoStream(raw);
else if (stage === '--echo-dgram') echoDgram(raw, process.argv[4]);
if (stage?.startsWith('--echo-')) {
  process.on('disconnect', () => process.exit(0));
} else {
  const spec = STAGES[stage];
  if (!spec) {
    process.stderr.write(`node-equivalents: STAGE must be one of ${Object.keys(STAGES).join(', ')} (got ${JSON.stringify(stage ?? '')})\n` +
      'usage: node native-bench/node-equivalents.mjs STAGE [N]\n');
    process.exit(2);
  }
  const n = raw === undefined ? spec.defaultN : Number(raw);
  if (raw !== undefined && (!/^\d+$/.test(raw) || n < 10 || n > 100_000_000)) {
    process.stderr.write(`node-equivalents: N must be an integer from 10 to 100000000 (got ${JSON.stringify(raw)})\n`);
    process.exit(2);
  }
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) process.on(sig, () => process.exit(code));
  try {
    await spec.run(n);
  } catch (err) {
    process.stderr.write(`node-equivalents ${stage}: ${err?.message ?? err}\n`);
    process.exit(1);
  }
  process.exit(0);
}
