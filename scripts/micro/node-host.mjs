#!/usr/bin/env node
// What the node runtime host (workers/runtime/node-host.mjs) costs per call, alone: the real host
// process, outside any sandbox, loaded with a Workers-style no-op (the demo GET /hello's code), is
// sent invoke frames on its direct channel (fd 5) as the gateway sends them, --batch at a time in
// one write, the next batch once every answer is back. No uWS, no gateway, no worker: the host's
// own share of a call on the direct path. Reports, per round, calls a second, wall µs per call and
// the host's CPU µs per call (/proc/PID/stat); medians at the end. --batch 1 is one call in flight
// (every call wakes the host); 64 is what 64 connections give it.
//
//   npm run build && node scripts/micro/node-host.mjs [--batch N] [--seconds S] [--rounds N]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eachFlag, intFlag, median, parseFlagsOrExit, UsageError } from '../lib/bench-helpers.mjs';
import { checkBuild, clkTck } from '../lib/load-bench.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const usage = () => 'usage: node scripts/micro/node-host.mjs [--batch N] [--seconds S] [--rounds N]';
const { batch, seconds, rounds } = parseFlagsOrExit('node-host', () => {
  const o = { batch: 64, seconds: 4, rounds: 3 };
  eachFlag(process.argv.slice(2), (flag, value) => {
    if (flag === '--batch') o.batch = intFlag(flag, value(), 1, 100_000);
    else if (flag === '--seconds') o.seconds = intFlag(flag, value(), 1, 3600);
    else if (flag === '--rounds') o.rounds = intFlag(flag, value(), 1, 1000);
    else throw new UsageError(`unknown flag ${flag}`);
  });
  checkBuild(root);
  return o;
}, usage);
const { encodeInstanceFrame, InstanceFrameDecoder } = await import(path.join(root, 'dist/src/protocol/instance-frames.js'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-micro-host-'));
const entry = path.join(dir, 'hello.mjs');
fs.writeFileSync(entry, "export default { async fetch(request, env, ctx) { return new Response('hello from faas\\n') } }\n");

/** CPU µs the process has used, from /proc/PID/stat (in clock ticks). */
function cpuUs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / clkTck);
}

/** One round: a fresh host, warmed, then --seconds of batches. */
async function round() {
  const host = spawn(process.execPath, [path.join(root, 'workers/runtime/node-host.mjs'), entry, 'fetch', 'hello', '128', '{}'],
    { stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'ignore', 'pipe'], env: { PATH: process.env.PATH, FAAS_DIRECT_FD: '5' } });
  const [worker, direct] = [host.stdio[3], host.stdio[5]];
  const ready = new InstanceFrameDecoder();
  await new Promise((resolve, reject) => {
    worker.on('data', (chunk) => {
      for (const { meta } of ready.push(chunk)) {
        if (meta.t === 'ready') resolve();
        else if (meta.t === 'load_error') reject(new Error(meta.message));
      }
    });
    host.on('exit', (code) => reject(new Error(`the host exited (${code}) before it was ready`)));
  });
  const headers = ['host', 'localhost:8080', 'user-agent', 'wrk', 'accept', '*/*', 'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http',
    'x-real-ip', '127.0.0.1', 'forwarded', 'for=127.0.0.1;host="localhost:8080";proto=http', 'traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'];
  const answers = new InstanceFrameDecoder();
  let id = 0;
  let pending = 0;
  let done = 0;
  const send = () => {
    const bufs = [];
    for (let i = 0; i < batch; i++) {
      id++;
      bufs.push(...encodeInstanceFrame({ t: 'invoke', id, requestId: `r${id}`, method: 'GET', path: '/hello', query: '', headers,
        deadlineMs: Date.now() + 10_000, clientIp: '127.0.0.1' }));
    }
    pending += batch;
    direct.write(Buffer.concat(bufs));
  };
  const run = (ms) => new Promise((resolve, reject) => {
    const until = performance.now() + ms;
    direct.removeAllListeners('data');
    direct.on('data', (chunk) => {
      for (const { meta } of answers.push(chunk)) {
        if (meta.t !== 'result' || meta.status !== 200) return reject(new Error(`unexpected answer: ${JSON.stringify(meta)}`));
        pending--;
        done++;
      }
      if (pending > 0) return;
      if (performance.now() < until) send();
      else resolve();
    });
    send();
  });
  await run(500); // warm-up: JIT, undici's lazy loads
  done = 0;
  const cpu0 = cpuUs(host.pid);
  const t0 = performance.now();
  await run(seconds * 1000);
  const wallMs = performance.now() - t0;
  const cpu = cpuUs(host.pid) - cpu0;
  host.kill('SIGTERM');
  return { perSecond: (done / wallMs) * 1000, wallUs: (wallMs * 1000) / done, cpuUs: cpu / done };
}

console.log(`node host alone, Workers-style no-op, ${batch} call(s) per write, ${rounds} round(s) of ${seconds} s; Node ${process.version}`);
const results = [];
for (let r = 1; r <= rounds; r++) {
  const res = await round();
  results.push(res);
  console.log(`round ${r}: ${res.perSecond.toFixed(0)} calls/s, ${res.wallUs.toFixed(1)} µs/call wall, host CPU ${res.cpuUs.toFixed(1)} µs/call`);
}
const m = (k) => median(results.map((x) => x[k]));
console.log(`median: ${m('perSecond').toFixed(0)} calls/s, ${m('wallUs').toFixed(1)} µs/call wall, host CPU ${m('cpuUs').toFixed(1)} µs/call`);
fs.rmSync(dir, { recursive: true, force: true });
