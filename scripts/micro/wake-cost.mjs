#!/usr/bin/env node
// What it costs a Node process to be woken for one small message, by placement: an echo process
// (node:net on a socketpair, the way a sandbox's host reads its worker) answers 100-byte messages
// one at a time. We read its CPU time from /proc and count its context switches. Two placements:
//
//   same core   the sender and the echo share CPU 1; one of them is always runnable (a ping-pong)
//   idle core   the sender sits on CPU 0 and spins --gap µs between messages, so CPU 1 goes idle
//               and every message wakes the echo from idle (what each process of the gateway
//               path sees at one connection)
//
// Each process on the path pays this once per hop. At one connection that, more than the work
// itself, is what a request costs (README, *Where the microseconds go*).
//
//   node scripts/micro/wake-cost.mjs [--messages N] [--gap US] [--rounds N]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import { eachFlag, intFlag, median, parseFlagsOrExit, UsageError } from '../lib/bench-helpers.mjs';
import { clkTck } from '../lib/load-bench.mjs';

if (process.argv[2] === '--echo') {
  const s = new net.Socket({ fd: 3, readable: true, writable: true });
  s.on('data', (d) => s.write(d));
  s.on('close', () => process.exit(0));
} else {
  const usage = () => 'usage: node scripts/micro/wake-cost.mjs [--messages N] [--gap US] [--rounds N]';
  const { messages, gapUs, rounds } = parseFlagsOrExit('wake-cost', () => {
    const o = { messages: 5000, gapUs: 100, rounds: 3 };
    eachFlag(process.argv.slice(2), (flag, value) => {
      if (flag === '--messages') o.messages = intFlag(flag, value(), 1, 10_000_000);
      else if (flag === '--gap') o.gapUs = intFlag(flag, value(), 0, 1_000_000);
      else if (flag === '--rounds') o.rounds = intFlag(flag, value(), 1, 1000);
      else throw new UsageError(`unknown flag ${flag}`);
    });
    return o;
  }, usage);
  if (os.cpus().length < 2) {
    console.error('needs 2 CPUs (the sender and the echo on different ones for the idle-core case)');
    process.exit(1);
  }

  /** One run: returns the echo's CPU µs per message, context switches per message, and the round trip. */
  const run = (senderCpu, gap) => new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', process.execPath, process.argv[1], '--echo'], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
    const sock = child.stdio[3];
    const stat = () => {
      const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      const ticks = Number(f[11]) + Number(f[12]);
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const ctx = ['voluntary', 'nonvoluntary'].reduce((n, k) => n + Number(status.match(new RegExp(`^${k}_ctxt_switches:\\s+(\\d+)`, 'm'))[1]), 0);
      return { cpuUs: ticks * 1e6 / clkTck, ctx };
    };
    const msg = Buffer.alloc(100);
    const warmup = 300;
    let n = 0;
    let start;
    sock.on('data', () => {
      n++;
      if (n === warmup) start = { ...stat(), t: performance.now() };
      if (n === warmup + messages) {
        const end = stat();
        const wallUs = (performance.now() - start.t) * 1000;
        child.kill();
        resolve({ cpu: (end.cpuUs - start.cpuUs) / messages, ctx: (end.ctx - start.ctx) / messages, rtt: wallUs / messages - gap });
        return;
      }
      const until = performance.now() + gap / 1000;
      while (performance.now() < until); // spin: a timer would let this CPU sleep too
      sock.write(msg);
    });
    child.on('error', reject);
    // The sender moves itself: taskset on our own pid.
    const pin = spawn('taskset', ['-p', '-c', String(senderCpu), String(process.pid)], { stdio: 'ignore' });
    pin.on('exit', () => setTimeout(() => sock.write(msg), 300)); // let the echo start
  });

  const cases = [['same core (ping-pong on CPU 1)', 1, 0], [`idle core (sender on CPU 0, ${gapUs} µs between messages)`, 0, gapUs]];
  const rows = [];
  for (const [name, cpu, gap] of cases) {
    const samples = [];
    for (let r = 0; r < rounds; r++) samples.push(await run(cpu, gap));
    rows.push(`| ${name} | ${median(samples.map((s) => s.cpu)).toFixed(1)} | ${median(samples.map((s) => s.ctx)).toFixed(2)} | ${median(samples.map((s) => s.rtt)).toFixed(1)} |`);
  }
  console.log(`wake-up cost of a Node process, ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0].model}, ${os.cpus().length} cores, Node ${process.version}, ` +
    `medians of ${rounds} rounds of ${messages} messages; command: node scripts/micro/wake-cost.mjs ${process.argv.slice(2).join(' ')}`.trimEnd());
  console.log('\n| placement | echo CPU µs per message | its context switches per message | round trip µs |\n|---|---|---|---|');
  for (const row of rows) console.log(row);
  process.exit(0);
}
