#!/usr/bin/env node
// What finding a request's route costs at 1, 10,000 and 100,000 routes. The lookup is the one in
// src/http/server.ts, run on the compiled RouteTable (src/routes/route-table.ts): the key
// `${method}:${path}` is built per request, then table.get(key); a miss also asks
// table.allowedMethods(path) to choose between 404 and 405. The tables hold Routes made as the
// store's sync makes them (parseRouteKey and parseFunctionConfig on every row, frozen, one Map
// in change-log order). tinybench, median per lookup; absolute figures vary with the machine:
// compare rows.
//
//   node scripts/micro/route-lookup.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
if (!fs.existsSync(path.join(root, 'dist/src/routes/route-table.js'))) {
  console.error('dist/src/routes/route-table.js is missing: run npm run build first');
  process.exit(1);
}
const { RouteTable } = await import(path.join(root, 'dist/src/routes/route-table.js'));
const { parseRouteKey } = await import(path.join(root, 'dist/src/routes/route-key.js'));
const { parseFunctionConfig } = await import(path.join(root, 'dist/src/routes/function-config.js'));

const SIZES = [1, 10_000, 100_000];
/** A lookup is tens of ns, under the timer's resolution: each timed call does this many. */
const BATCH = 1024;
const V = JSON.stringify({ runtime: 'node', code: "export default { fetch() { return new Response('x') } }" });

const methodOf = (i) => (i % 5 === 4 ? 'POST' : 'GET');
const pathOf = (i) => `/t${i % 100}/fn-${i}`;

/** A table of n routes, each Route as the store's toRoute() builds it from its row. */
function buildTable(n) {
  const routes = new Map();
  for (let i = 0; i < n; i++) {
    const key = `${methodOf(i)}:${pathOf(i)}`;
    const { method, path: routePath } = parseRouteKey(key);
    const { config } = parseFunctionConfig(V);
    routes.set(key, Object.freeze({ key, method, path: routePath, version: i + 1, updated: 1_700_000_000_000, config }));
  }
  return new RouteTable(routes);
}

/** BATCH requests as [method, path]: routes spread over the whole table (a fixed LCG), or paths that no route has. */
function requests(n, hit) {
  let seed = 12345;
  return Array.from({ length: BATCH }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const i = (seed >>> 8) % n; // an LCG's low bits repeat quickly
    return hit ? [methodOf(i), pathOf(i)] : ['GET', `/t${i % 100}/missing-${i}`];
  });
}

const lookup = (table, reqs) => () => {
  for (const [method, reqPath] of reqs) {
    // server.ts: a fresh key string per request, so its hash is computed every time.
    if (table.get(`${method}:${reqPath}`) === undefined) throw new Error(`no route for ${method}:${reqPath}`);
  }
};
const miss = (table, reqs) => () => {
  for (const [method, reqPath] of reqs) {
    if (table.get(`${method}:${reqPath}`) !== undefined || table.allowedMethods(reqPath).length > 0) throw new Error(`${reqPath} exists`);
  }
};

const bench = new Bench({ time: 500, warmupTime: 100, throws: true });
// The first 404 on a table fresh from a sync, timed apart (one new RouteTable over the same Map,
// one 404 per run): it once built a path index there, 38 ms at 100k routes; now it must cost
// what any miss costs.
const firstMiss = new Bench({ time: 300, iterations: 10, warmupTime: 50, warmupIterations: 2, throws: true });
for (const n of SIZES) {
  const table = buildTable(n);
  bench.add(`hit, ${n}`, lookup(table, requests(n, true)));
  bench.add(`miss, ${n}`, miss(table, requests(n, false)));
  firstMiss.add(`first miss, ${n}`, () => {
    if (new RouteTable(table.routes).allowedMethods('/t0/missing').length > 0) throw new Error('/t0/missing exists');
  });
}
await bench.run();
await firstMiss.run();

const fmt = (ns) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(1)} ms` : ns >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
const ROWS = [
  ['hit: key + get', 'hit', BATCH],
  ['miss (404): key + get + allowedMethods', 'miss', BATCH],
  ['first miss on a table fresh from a sync', 'first miss', 1],
];
console.log(`route lookup, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/micro/route-lookup.mjs\n`);
console.log('| operation | routes | median per lookup | lookups/s |');
console.log('|---|---|---|---|');
for (const [label, name, perCall] of ROWS) {
  for (const n of SIZES) {
    const task = [...bench.tasks, ...firstMiss.tasks].find((t) => t.name === `${name}, ${n}`);
    const ns = ((task.result.latency?.p50 ?? task.result.p50) * 1e6) / perCall;
    console.log(`| ${label} | ${n.toLocaleString('en')} | ${fmt(ns)} | ${Math.round(1e9 / ns).toLocaleString('en')} |`);
  }
}
console.log(`\nMeasured: the request path's lookup in server.ts on a compiled RouteTable; hits and misses are ${BATCH} different requests per timed call (median of calls / ${BATCH}); allowedMethods is one Map lookup per HTTP method.`);
