#!/usr/bin/env node
// Does the gateway leak? Starts it with --heapsnapshot-signal, runs rounds of what a long life
// brings (a route's code changed and called, other calls, now and then a worker SIGKILLed),
// takes a heap snapshot (which collects first) after a warm-up and again after more rounds, and
// prints how much each kind of heap object grew in between. A leak shows as a constructor whose
// count grows with the rounds; compiled code and V8's hidden objects grow for a while as more
// code gets optimized, and then stop.
//
//   npm run build && node scripts/heap-diff.mjs [--warmup N (40)] [--rounds N (160)] [--kill-every N (8)]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { eachFlag, intFlag, UsageError } from './lib/bench-helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = { warmup: 40, rounds: 160, killEvery: 8 };
try {
  eachFlag(process.argv.slice(2), (flag, value) => {
    const n = () => intFlag(flag, value(), 0, 100_000);
    if (flag === '--warmup') opts.warmup = n();
    else if (flag === '--rounds') opts.rounds = n();
    else if (flag === '--kill-every') opts.killEvery = n();
    else throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
  });
} catch (err) {
  process.stderr.write(`heap-diff: ${err.message}\nusage: node scripts/heap-diff.mjs [--warmup N] [--rounds N] [--kill-every N]\n`);
  process.exit(2);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-heap-'));
fs.chmodSync(dir, 0o755); // sandboxes (uid 65534) mount code from under the run dir
const gw = spawn(process.execPath, ['--heapsnapshot-signal=SIGUSR2', path.join(root, 'bin/faas.js'), 'gateway', '--host', '127.0.0.1',
  '--port', '0', '--admin-port', '0', '--db', path.join(dir, 'faas.db'), '--run-dir', path.join(dir, 'run'), '--workers', '2', '--sync-ms', '200'],
{ cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] });
const cleanup = () => {
  if (gw.exitCode === null) gw.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const [port, admin] = await new Promise((resolve, reject) => {
  let out = '';
  gw.stdout.on('data', (d) => {
    out += d;
    const m = /listening http=(\d+) admin=(\d+)/.exec(out);
    if (m) resolve([Number(m[1]), Number(m[2])]);
  });
  gw.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before listening`)));
});
const db = new Database(path.join(dir, 'faas.db'));
db.pragma('busy_timeout = 5000');
const upsert = db.prepare("INSERT INTO functions(k, v) VALUES ('GET:/churn', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const call = (p) => fetch(`http://127.0.0.1:${port}${p}`).then((r) => r.text(), () => undefined);

let round = 0;
let kills = 0;
/** One round: a new version of /churn (served after the next sync), 5 calls of it, 20 of /hello. */
async function rounds(n) {
  for (let i = 0; i < n; i++, round++) {
    if (opts.killEvery > 0 && round % opts.killEvery === opts.killEvery - 1) {
      const ws = await (await fetch(`http://127.0.0.1:${admin}/workers`)).json();
      const w = ws.find((x) => typeof x.pid === 'number' && x.available);
      if (w) {
        process.kill(w.pid, 'SIGKILL');
        kills++;
        await sleep(800);
      }
    }
    upsert.run(JSON.stringify({ runtime: 'node', code: `export default { fetch() { return new Response('version ${round}') } }` }));
    await sleep(250);
    for (let j = 0; j < 5; j++) await call('/churn');
    for (let j = 0; j < 20; j++) await call('/hello');
  }
}

/** SIGUSR2 makes the gateway collect and write Heap-….heapsnapshot into its cwd. */
async function snapshot() {
  const before = new Set(fs.readdirSync(dir));
  gw.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(200);
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file && fs.statSync(path.join(dir, file)).size > 0) {
      await sleep(500); // let the writer finish
      return path.join(dir, file);
    }
  }
  throw new Error('no heap snapshot appeared within 20 s');
}

/** Count and self size of the heap's nodes by kind (objects and closures by constructor name). */
function summarize(file) {
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + iType]];
    const key = type === 'object' || type === 'closure' ? `${type} ${s.strings[s.nodes[i + iName]]}` : `(${type})`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

await rounds(opts.warmup);
const a = summarize(await snapshot());
const killsBefore = kills;
await rounds(opts.rounds);
const b = summarize(await snapshot());

const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => {
  const x = a.get(k) ?? { count: 0, bytes: 0 };
  const y = b.get(k) ?? { count: 0, bytes: 0 };
  return { k, count: y.count - x.count, bytes: y.bytes - x.bytes };
}).filter((r) => r.count !== 0 || r.bytes !== 0).sort((p, q) => q.bytes - p.bytes);
const total = rows.reduce((t, r) => t + r.bytes, 0);
console.log(`heap-diff ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/heap-diff.mjs ${process.argv.slice(2).join(' ')}`.trimEnd());
console.log(`between the snapshots: ${opts.rounds} rounds (${opts.rounds} versions of a route, ${opts.rounds * 25} calls), ${kills - killsBefore} workers killed\n`);
console.log('| heap nodes | count change | bytes change |\n|---|---|---|');
for (const r of rows.slice(0, 15)) console.log(`| ${r.k} | ${r.count >= 0 ? '+' : ''}${r.count} | ${r.bytes >= 0 ? '+' : ''}${r.bytes} |`);
console.log(`| all | | ${total >= 0 ? '+' : ''}${total} |`);
