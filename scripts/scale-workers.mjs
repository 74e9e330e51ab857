#!/usr/bin/env node
// Scale: a gateway with many workers (100 by default). How long until every one is connected
// and reporting, then, over a watch window, the load reports the gateway received against what
// the workers sent: dropped at the gateway (by reason) and missed on the way (gaps in each
// worker's seq: a report skipped while the previous one was queued, or refused by the kernel).
// Last, bursts of calls to see them spread over the fleet.
//
//   npm run build && node scripts/scale-workers.mjs [--workers 100] [--watch 10]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (flag, fallback, min, max) => {
  const at = process.argv.indexOf(flag);
  if (at < 0) return fallback;
  const n = Number(process.argv[at + 1]);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} must be an integer from ${min} to ${max} (got ${process.argv[at + 1]})`);
  return n;
};
const WORKERS = arg('--workers', 100, 1, 256);
const WATCH_S = arg('--watch', 10, 1, 3600);
const REPORT_MS = 500;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function metric(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

async function main() {
  if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run npm run build first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-scale-'));
  fs.chmodSync(dir, 0o755);
  const started = performance.now();
  const gw = spawn(process.execPath, ['bin/faas.js', 'gateway', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0',
    '--db', path.join(dir, 'faas.db'), '--run-dir', path.join(dir, 'run'), '--workers', String(WORKERS), '--sync-ms', '200',
    '--report-ms', String(REPORT_MS)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  gw.stderr.on('data', (c) => { err = (err + c).slice(-20_000); });
  process.on('exit', () => { try { gw.kill('SIGKILL'); } catch {} });
  try {
    const ports = await new Promise((resolve, reject) => {
      let out = '';
      gw.stdout.on('data', (c) => {
        out += c;
        const m = /listening http=(\d+) admin=(\d+)/.exec(out);
        if (m) resolve({ http: m[1], admin: m[2] });
      });
      gw.once('exit', (code) => reject(new Error(`gateway exited (${code}):\n${err}`)));
    });
    const admin = `http://127.0.0.1:${ports.admin}`;
    let available = 0;
    for (let i = 0; i < 1200 && available < WORKERS; i++) {
      await sleep(250);
      available = (await (await fetch(`${admin}/workers`)).json()).filter((w) => w.available).length;
      if (i % 20 === 0) process.stderr.write(`${((performance.now() - started) / 1000).toFixed(1)} s: ${available}/${WORKERS} workers available\n`);
    }
    const readyS = (performance.now() - started) / 1000;
    if (available < WORKERS) throw new Error(`only ${available} of ${WORKERS} workers became available in 300 s:\n${err}`);
    process.stderr.write(`all ${WORKERS} available after ${readyS.toFixed(1)} s; watching for ${WATCH_S} s\n`);
    await sleep(2000); // let the start-up burst settle

    const before = await (await fetch(`${admin}/metrics`)).text();
    const t0 = performance.now();
    await sleep(WATCH_S * 1000);
    const after = await (await fetch(`${admin}/metrics`)).text();
    const seconds = (performance.now() - t0) / 1000;
    const delta = (name) => metric(after, name) - metric(before, name);
    const received = delta('faas_datagrams_received_total');
    const dropped = delta('faas_datagrams_dropped_total');
    const missed = delta('faas_datagrams_missed_total');
    const stillAvailable = (await (await fetch(`${admin}/workers`)).json()).filter((w) => w.available).length;

    // Calls: bursts of concurrent calls; how many workers answered.
    const db = new Database(path.join(dir, 'faas.db'));
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/spread', JSON.stringify({ runtime: 'node',
      code: 'export default { async fetch() { await new Promise((ok) => setTimeout(ok, 200)); return new Response("ok") } }' }));
    db.close();
    await sleep(500);
    const served = new Set();
    let ok = 0;
    for (let burst = 0; burst < 3; burst++) {
      const rs = await Promise.all(Array.from({ length: WORKERS }, () => fetch(`http://127.0.0.1:${ports.http}/spread`).then(async (r) => ({ status: r.status, worker: r.headers.get('x-faas-worker'), body: await r.text() }))));
      for (const r of rs) if (r.status === 200) { ok++; served.add(r.worker); }
    }
    const gwRssMb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${gw.pid}/status`, 'utf8'))[1]) / 1024;

    console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
    console.log(`command: node scripts/scale-workers.mjs --workers ${WORKERS} --watch ${WATCH_S}\n`);
    console.log('| workers | all available after | reports expected | received | dropped at the gateway | missed on the way | available at the end | calls answered | workers that answered | gateway RSS |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const expected = Math.round(WORKERS * seconds * 1000 / REPORT_MS);
    console.log(`| ${WORKERS} | ${readyS.toFixed(1)} s | ≈ ${expected} in ${seconds.toFixed(1)} s | ${received} | ${dropped} | ${missed} | ${stillAvailable} | ${ok}/${3 * WORKERS} | ${served.size} | ${gwRssMb.toFixed(0)} MiB |`);
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => { gw.once('exit', r); setTimeout(r, 20_000); });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`scale-workers: ${e.stack ?? e}\n`);
  process.exit(1);
});
