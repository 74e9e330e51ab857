#!/usr/bin/env node
// What RouteStore.sync() (src/routes/route-store.ts, compiled) costs the event loop with 100,000
// routes in a real SQLite file: the store opens it (WAL, schema and triggers from schema.ts, 3 demo
// routes) and a second connection plays the operator, inserting and updating rows through the
// real triggers (checks, `updated`, the functions_changes log). Timed: a sync when nothing was
// committed, and a sync after 1 row and after 1,000 rows (1 %) were updated; the update runs in
// tinybench's beforeEach, outside the timing. For reference, the copy of the route Map that a
// sync makes whenever anything changed, alone. Median per sync; absolute figures vary with the
// machine: compare rows.
//
//   node scripts/micro/route-sync.mjs
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
if (!fs.existsSync(path.join(root, 'dist/src/routes/route-store.js'))) {
  console.error('dist/src/routes/route-store.js is missing: run npm run build first');
  process.exit(1);
}
const { RouteStore } = await import(path.join(root, 'dist/src/routes/route-store.js'));
const { DEMO_ROUTES } = await import(path.join(root, 'dist/src/routes/schema.js'));
// The project's own better-sqlite3, resolved from the repository root.
const Database = createRequire(path.join(root, 'package.json'))('better-sqlite3');

const ROWS = 100_000;
const ONE_PERCENT = ROWS / 100;
const keyOf = (i) => `GET:/t${i % 100}/fn-${i}`;
const configOf = (revision) => JSON.stringify({ runtime: 'node', code: `export default { fetch() { return new Response('x') } } // ${revision}` });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-micro-sync-'));
let store;
let operator;
const cleanUp = () => {
  operator?.close();
  store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

store = RouteStore.open(path.join(dir, 'routes.db'));
operator = new Database(path.join(dir, 'routes.db'));
const inserted = ROWS - DEMO_ROUTES.length; // the store seeded the demo routes: 100,000 in all
const insert = operator.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
operator.transaction(() => {
  for (let i = 0; i < inserted; i++) insert.run(keyOf(i), configOf(0));
})();

const started = performance.now();
const first = store.sync();
const firstMs = performance.now() - started;
if (!first.ok || store.snapshot.size !== ROWS) throw new Error(`first sync loaded ${store.snapshot.size} routes: ${first.error ?? ''}`);

// Each update writes a new revision into the code, so every row really changes and is logged.
const update = operator.prepare('UPDATE functions SET v = ? WHERE k = ?');
let revision = 0;
const updateRows = (count) => {
  revision++;
  const stride = Math.floor(inserted / count);
  operator.transaction(() => {
    for (let i = 0; i < count; i++) update.run(configOf(revision), keyOf((i * stride + revision) % inserted));
  })();
};
const syncExpecting = (changed) => () => {
  const outcome = store.sync();
  if (!outcome.ok || outcome.changed !== changed) throw new Error(`sync changed ${outcome.changed}, expected ${changed}: ${outcome.error ?? ''}`);
};

const cheap = new Bench({ time: 500, warmupTime: 100, throws: true });
cheap.add('no change (PRAGMA data_version only)', syncExpecting(0));
// A sync that applies anything is tens of ms: 20 timed runs, each after its own update.
const costly = new Bench({ time: 1, iterations: 20, warmupTime: 1, warmupIterations: 3, throws: true });
costly.add('1 row changed', syncExpecting(1), { beforeEach: () => updateRows(1) });
costly.add(`1 % changed (${ONE_PERCENT.toLocaleString('en')} rows)`, syncExpecting(ONE_PERCENT), { beforeEach: () => updateRows(ONE_PERCENT) });
// Not a sync: the copy of the route Map that apply() makes before it changes anything.
costly.add('reference: new Map(snapshot.routes) alone', () => new Map(store.snapshot.routes));
await cheap.run();
await costly.run();

const fmt = (ms) => (ms >= 1 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(1)} µs`);
const opsPerSecond = (ms) => Math.round(1000 / ms).toLocaleString('en');
console.log(`route sync, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/micro/route-sync.mjs\n`);
console.log(`| RouteStore.sync() at ${ROWS.toLocaleString('en')} routes | median per sync | syncs/s | runs |`);
console.log('|---|---|---|---|');
console.log(`| first sync (loads every row; one run, not tinybench) | ${fmt(firstMs)} | – | 1 |`);
for (const task of [...cheap.tasks, ...costly.tasks]) {
  const ms = task.result.latency?.p50 ?? task.result.p50;
  const runs = task.result.latency?.samplesCount ?? task.runs;
  console.log(`| ${task.name} | ${fmt(ms)} | ${opsPerSecond(ms)} | ${runs} |`);
}
console.log('\nMeasured: store.sync() on the event loop (better-sqlite3 is synchronous), a real WAL database in a temp dir; the operator\'s UPDATE transaction is not timed.');
