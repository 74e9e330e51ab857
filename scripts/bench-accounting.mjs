#!/usr/bin/env node
// How true the per-call figures are: the CPU time (server-timing `cpu;dur`, from the instance's
// cgroup) of a loop of known length, against what the function itself measured of the loop
// (process.cpuUsage, time.process_time); and the peak memory (the access log's `memPeakMb`) of a
// call that allocates and touches a known number of MiB, against the same instance's figure for a
// call that allocates nothing, plus the allocation. Each row: median of --runs calls on a fresh
// instance, in process mode and in container mode. The gateway's log goes to a file.
//
//   npm run build && node scripts/bench-accounting.mjs [--runs 5]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { eachFlag, intFlag, listeningPort, median, UsageError } from './lib/bench-helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let RUNS = 5;
try {
  eachFlag(process.argv.slice(2), (flag, value) => {
    if (flag !== '--runs') throw new UsageError(`unknown flag ${flag} (known: --runs)`);
    RUNS = intFlag(flag, value(), 1, 100);
  });
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`bench-accounting: ${err.message}\nusage: node scripts/bench-accounting.mjs [--runs N]\n`);
  process.exit(2);
}

const NODE = `export default { async fetch(r) {
  const q = new URL(r.url).searchParams;
  if (q.has('ms')) { // spin for about this much CPU, and say how much it was
    const t0 = process.cpuUsage(); let x = 0;
    while (true) { for (let i = 0; i < 1e5; i++) x += i; const d = process.cpuUsage(t0); if ((d.user + d.system) / 1000 >= Number(q.get('ms'))) return Response.json({ cpuUs: d.user + d.system, x }); }
  }
  if (q.has('mib')) { const b = Buffer.alloc(Number(q.get('mib')) * 1048576, 1); return Response.json({ len: b.length }); }
  return Response.json({});
} }`;
const PYTHON = `import time
def handle(r):
    if 'ms' in r.query:
        t0 = time.process_time(); x = 0
        while True:
            for i in range(10000): x += i
            d = time.process_time() - t0
            if d * 1000 >= float(r.query['ms']):
                return {"cpuUs": d * 1e6}
    if 'mib' in r.query:
        b = b"x" * (int(r.query['mib']) * 1048576)
        return {"len": len(b)}
    return {}
`;

async function main() {
  if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run npm run build first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-acct-'));
  fs.chmodSync(dir, 0o755);
  const dbPath = path.join(dir, 'faas.db');
  const logPath = path.join(dir, 'gateway.log');
  const logFd = fs.openSync(logPath, 'w');
  const gw = spawn(process.execPath, ['bin/faas.js', 'gateway', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0',
    '--db', dbPath, '--run-dir', path.join(dir, 'run'), '--workers', '1', '--sync-ms', '50'], { cwd: root, stdio: ['ignore', 'pipe', logFd] });
  try {
    const port = await listeningPort(gw, `the gateway (its log: ${logPath})`);
    const db = new Database(dbPath);
    const call = async (route, query) => {
      const res = await fetch(`http://127.0.0.1:${port}${route}?${query}`);
      const body = await res.json();
      if (res.status !== 200) throw new Error(`${route}?${query}: ${res.status} ${JSON.stringify(body)}`);
      const cpu = /cpu;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '')?.[1];
      if (cpu === undefined) throw new Error(`${route}: no cpu;dur in server-timing (does this host give the worker cgroups? /readyz says)`);
      return { body, cpuMs: Number(cpu), requestId: res.headers.get('x-request-id') };
    };
    /** memPeakMb of the access line of each request id (the log is written every 100 ms). */
    const peaks = async (ids) => {
      await new Promise((r) => setTimeout(r, 300));
      const lines = fs.readFileSync(logPath, 'utf8').split('\n').filter((l) => l.includes('"msg":"request"'));
      return ids.map((id) => {
        const line = lines.find((l) => l.includes(`"requestId":"${id}"`));
        if (!line) throw new Error(`no access line for ${id}`);
        return JSON.parse(line).memPeakMb;
      });
    };
    const rows = [];
    let version = 0;
    for (const mode of ['process', 'container']) {
      for (const [runtime, code] of [['node', NODE], ['python', PYTHON]]) {
        const key = `GET:/acct/${runtime}/${mode}`;
        const route = key.slice(4);
        const deployFresh = async () => { // a new version: a new instance, whose figures start from nothing
          db.prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v')
            .run(key, JSON.stringify({ runtime, mode, memory_mb: 512, env: { V: String(++version) }, code }));
          await new Promise((r) => setTimeout(r, 200));
          for (let i = 0; i < 100; i++) {
            const res = await fetch(`http://127.0.0.1:${port}${route}`);
            await res.text();
            if (res.status === 200) return;
            await new Promise((r) => setTimeout(r, 50));
          }
          throw new Error(`${key} never answered 200`);
        };
        for (const ms of [50, 200, 1000]) {
          await deployFresh();
          const ratios = [];
          for (let i = 0; i < RUNS; i++) {
            const r = await call(route, `ms=${ms}`);
            ratios.push(r.cpuMs / (r.body.cpuUs / 1000));
          }
          rows.push({ what: `${runtime}, ${mode}: a loop of ${ms} ms of CPU`, expected: `${ms} ms (measured inside)`, ratio: median(ratios) });
        }
        for (const mib of [16, 64, 256]) {
          const ratios = [];
          for (let i = 0; i < RUNS; i++) {
            await deployFresh();
            const base = await call(route, '');
            const big = await call(route, `mib=${mib}`);
            const [b, a] = await peaks([base.requestId, big.requestId]);
            ratios.push((a - b) / mib);
          }
          rows.push({ what: `${runtime}, ${mode}: allocates ${mib} MiB`, expected: `baseline + ${mib} MiB`, ratio: median(ratios) });
        }
        process.stderr.write(`${runtime}, ${mode}: done\n`);
      }
    }
    db.close();
    const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.availableParallelism()} cores (${cpu}), Node ${process.version}; ` +
      `median of ${RUNS} calls per row; reported / what it should be`);
    console.log(`command: node scripts/bench-accounting.mjs --runs ${RUNS}\n`);
    console.log('| function | should be | reported / should be | within 10 % |');
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.what} | ${r.expected} | ${r.ratio.toFixed(3)} | ${Math.abs(r.ratio - 1) <= 0.1 ? 'yes' : '**no**'} |`);
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    fs.closeSync(logFd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench-accounting: ${err.stack ?? err}\n`);
  process.exit(1);
});
