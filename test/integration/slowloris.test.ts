// Slow clients with the real tool: slowhttptest (Debian package) holding 100 connections open
// by trickling headers (slowloris, -H) or a body (slow POST to a route that reads it, -B) every 2 s. uWS cuts each at its
// 10 s timeout whatever the trickle, so the attack runs out of connections long before its
// 30 s, and the service stays available to others all along (slowhttptest's own probe, and
// ours: a normal call during the attack is served at once).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type Gateway } from './harness.js';

let gw: Gateway;
beforeAll(async () => {
  gw = await startGateway(['--access-log', 'off'], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
});

interface Run { output: string; rows: Array<{ second: number; closed: number; connected: number; available: number }>; seconds: number }

function slowhttptest(mode: '-H' | '-B', name: string): Promise<Run> {
  const out = path.join(gw.dir, name);
  const args = ['-c', '100', mode, '-i', '2', '-r', '50', '-t', mode === '-B' ? 'POST' : 'GET', '-u', `${gw.http}${mode === '-B' ? '/echo' : '/hello'}`,
    '-x', '24', '-p', '3', '-l', '30', '-g', '-o', out];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn('slowhttptest', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', (err) => reject(new Error(`slowhttptest (Debian package slowhttptest) must be installed: ${err.message}`)));
    child.on('exit', () => {
      const csv = fs.readFileSync(`${out}.csv`, 'utf8').trim().split('\n').slice(1);
      const rows = csv.map((line) => {
        const [second, closed, , connected, available] = line.split(',').map(Number);
        return { second: second!, closed: closed!, connected: connected!, available: available! };
      });
      resolve({ output: output.replace(/\x1b\[[\d;]*m/g, ''), rows, seconds: (Date.now() - started) / 1000 });
    });
  });
}

it('slowloris and slow POST run out of connections in ~10 s; the gateway serves others throughout', async () => {
  const attacks = Promise.all([slowhttptest('-H', 'headers'), slowhttptest('-B', 'body')]);
  await new Promise((r) => setTimeout(r, 5000)); // both attacks have their 100 connections open
  const during = await fetch(`${gw.http}/hello`);
  expect(during.status).toBe(200);
  for (const run of await attacks) {
    expect(run.output).toContain('No open connections left');
    expect(run.seconds).toBeLessThan(25); // 30 s if the connections had been held
    expect(Math.max(...run.rows.map((r) => r.connected))).toBeGreaterThanOrEqual(90); // the attack did get its connections
    expect(run.rows.every((r) => r.available === 100)).toBe(true);
  }
}, 60_000);
