#!/usr/bin/env node
// One gateway ⇄ worker hop as the gateway makes it: an invoke frame out and a result frame back
// over a real Unix stream socket between two processes, with the project's own codec
// (src/protocol/frames.ts: FrameWriter's corked writes, FrameDecoder) — the same bytes the
// gateway sends for a GET with a few headers, and a 64 KiB body. The "worker" here answers at
// once: what is left is the hop itself (syscalls, wake-ups, framing, msgpackr). Compare with the
// C floor of one Unix stream round trip (native-bench/unix-rtt.c, scripts/bench-native.mjs).
//
//   npm run build && node scripts/micro/stream-hop.mjs [--calls 20000]
//
// Sequential: one call in flight, median and p99 µs per round trip. Pipelined: 64 in flight,
// calls per second (the gateway keeps many calls in flight on one connection).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const framesJs = path.join(root, 'dist/src/protocol/frames.js');
if (!fs.existsSync(framesJs)) throw new Error('dist/ is missing: run npm run build first');
const { FrameDecoder, FrameWriter } = await import(framesJs);

const INVOKE = 1;
const RESULT = 2;

if (process.argv[2] === '--serve') {
  // The worker end: answer every invoke with a 200 result, echoing nothing.
  const server = net.createServer((socket) => {
    const decoder = new FrameDecoder();
    const writer = new FrameWriter(socket);
    socket.on('data', (chunk) => {
      for (const { message } of decoder.push(chunk)) {
        if (message.t === INVOKE) writer.send({ t: RESULT, id: message.id, status: 200, headers: ['content-type', 'text/plain'], cold: false, fnMs: 0.01 }, BODY_OUT);
      }
    });
  });
  const BODY_OUT = Buffer.from('hello from faas\n');
  server.listen(process.argv[3], () => process.send('ready'));
  process.on('disconnect', () => process.exit(0));
} else {
  const at = process.argv.indexOf('--calls');
  const CALLS = at > 0 ? Number(process.argv[at + 1]) : 20_000;
  if (!Number.isInteger(CALLS) || CALLS < 1000) throw new Error(`--calls must be an integer ≥ 1000 (got ${process.argv[at + 1]})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-hop-'));
  const sock = path.join(dir, 'w.sock');
  const child = fork(fileURLToPath(import.meta.url), ['--serve', sock], { stdio: 'inherit' });
  const cleanup = () => { try { child.kill('SIGKILL'); } catch {} fs.rmSync(dir, { recursive: true, force: true }); };
  process.on('exit', cleanup);
  await new Promise((resolve) => child.once('message', resolve));

  const socket = net.connect(sock);
  await new Promise((resolve) => socket.once('connect', resolve));
  const writer = new FrameWriter(socket);
  const decoder = new FrameDecoder();
  const waiting = new Map();
  socket.on('data', (chunk) => {
    for (const { message } of decoder.push(chunk)) {
      const done = waiting.get(message.id);
      waiting.delete(message.id);
      done?.();
    }
  });
  let nextId = 1;
  const headers = ['host', '127.0.0.1:8080', 'user-agent', 'wrk', 'accept', '*/*'];
  const call = (body) => new Promise((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    writer.send({ t: INVOKE, id, key: 'GET:/hello', version: 1, requestId: `r${id}`, method: 'GET', path: '/hello', query: '', headers }, body);
  });

  const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  const rows = [];
  for (const [label, body] of [['GET, no body', undefined], ['POST, 64 KiB body', Buffer.alloc(64 * 1024, 120)]]) {
    for (let i = 0; i < 2000; i++) await call(body); // warm-up
    const us = [];
    for (let i = 0; i < CALLS; i++) {
      const t = performance.now();
      await call(body);
      us.push((performance.now() - t) * 1000);
    }
    us.sort((a, b) => a - b);
    // Pipelined: keep 64 calls in flight.
    const started = performance.now();
    let sent = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (sent < CALLS) {
        sent++;
        await call(body);
      }
    }));
    const perSecond = CALLS / ((performance.now() - started) / 1000);
    rows.push(`| ${label} | ${q(us, 0.5).toFixed(1)} µs | ${q(us, 0.99).toFixed(1)} µs | ${Math.round(perSecond)} |`);
  }
  socket.destroy();
  console.log(`${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.availableParallelism()} cores; ` +
    `command: node scripts/micro/stream-hop.mjs --calls ${CALLS}\n`);
  console.log('| frame | round trip p50 (1 in flight) | p99 | calls/s with 64 in flight |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log('\nThe hop the gateway makes per call, answered at once: project codec over a real Unix stream socket between two processes.');
  process.exit(0);
}
