#!/usr/bin/env node
// Several nodes, measured: three gateways, PostgreSQL, Redis and HAProxy (examples/haproxy.cfg),
// each in its own network namespace on a bridge (scripts/lib/cluster-hosts.mjs; the same setup
// test/integration/cluster.test.ts asserts on). Prints a Markdown table of:
//
//   - propagation: an INSERT, UPDATE and DELETE committed in PostgreSQL → the first call that a
//     node answers with the change (the time that call was sent; polled every 20 ms on each node
//     directly); "all 3" is the slowest of the three nodes, per round
//   - catch-up: a node whose link was cut (`ip link set down` on its veth) while an UPDATE was
//     made, from the link's return to its serving the change
//   - failover: a gateway SIGKILLed (its whole process tree) under closed-loop load through
//     HAProxy → HAProxy shows it DOWN; calls that failed, and calls in flight at the kill
//   - share: which node answered each of N calls through HAProxy (by x-request-id, from each node's
//     access log), with all nodes idle and with gw1 kept busy by CPU-bound calls sent straight to
//     it, and the agent's weight HAProxy holds for each node meanwhile
//   - rate limit: a route with rate_limit {rps: 10, burst: 10}, called 40 times a second through
//     HAProxy for 5 s: calls allowed a second across the three nodes
//
// Needs root (network namespaces), PostgreSQL 15, redis-server, haproxy, and `npm run build`.
// Measures only what the built gateway has (--cluster-db, --agent-port, --cluster-redis); the
// rest is reported as not measured. Everything it starts is stopped, and the namespaces, bridge
// and temp dir removed, on exit, on SIGINT/SIGTERM and on errors. Exits 0 when it measured.
//
//   npm run build && node scripts/cluster-bench.mjs [--rounds N] [--failovers N] [--share-calls N] [--share-concurrency N] [--sync-ms MS] [--json FILE]
import fs from 'node:fs';
import { eachFlag, intFlag, parseFlagsOrExit, UsageError } from './lib/bench-helpers.mjs';
import { netnsUnavailable } from './lib/cluster-hosts.mjs';
import { startCluster, servedEverywhere } from './lib/cluster.mjs';
import { failover, FUNCTIONS, hog, median, propagation, rateLimited, share, timeUntilServed } from './lib/cluster-measure.mjs';

const SCRIPT = 'cluster-bench';
const opts = { rounds: 5, failovers: 2, shareCalls: 300, shareConcurrency: 12, syncMs: 4000, json: undefined };

function usage() {
  return 'usage: node scripts/cluster-bench.mjs [--rounds N] [--failovers N] [--share-calls N] [--share-concurrency N] [--sync-ms MS] [--json FILE]\n' +
    '  --rounds N        propagation rounds, each an INSERT, UPDATE and DELETE (5)\n' +
    '  --failovers N     nodes killed one after another, each started again after (2; at most 3)\n' +
    '  --share-calls N   calls through HAProxy per share measurement (300)\n' +
    '  --share-concurrency N  clients making them, each call after the one before (12)\n' +
    '  --sync-ms MS      the gateways\' --sync-ms, the backstop period (4000)\n' +
    '  --json FILE       also write every measurement as JSON';
}

parseFlagsOrExit(SCRIPT, () => eachFlag(process.argv.slice(2), (flag, value) => {
  if (flag === '--rounds') opts.rounds = intFlag(flag, value(), 1, 100);
  else if (flag === '--failovers') opts.failovers = intFlag(flag, value(), 0, 3);
  else if (flag === '--share-calls') opts.shareCalls = intFlag(flag, value(), 30, 100_000);
  else if (flag === '--share-concurrency') opts.shareConcurrency = intFlag(flag, value(), 1, 256);
  else if (flag === '--sync-ms') opts.syncMs = intFlag(flag, value(), 50, 3_600_000);
  else if (flag === '--json') opts.json = value();
  else throw new UsageError(`unknown flag ${flag}`);
}), usage);

const log = (line) => process.stderr.write(`${SCRIPT}: ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const body = (text) => (a) => a.status === 200 && a.text === text;
const fmt = (x) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'n/a');
const pct = (by, n) => {
  const total = Object.values(by).reduce((a, b) => a + b, 0);
  return total ? `${Math.round((100 * (by[n] ?? 0)) / total)}%` : 'n/a';
};

const unavailable = netnsUnavailable();
if (unavailable) {
  log(`cannot build hosts here: ${unavailable}`);
  process.exit(1);
}

let cluster;
let stopping = false;
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    if (stopping) process.exit(code);
    stopping = true;
    log(`${sig}: tearing down`);
    (cluster ? cluster.teardown() : Promise.resolve()).finally(() => process.exit(code));
  });
}

const rows = [];
const data = { opts, features: undefined };
let exitCode = 0;
try {
  cluster = await startCluster({ syncMs: opts.syncMs, log });
  const c = cluster;
  data.features = c.features;
  const f = c.features;
  const [gw1, gw2, gw3] = c.gateways;

  if (f.clusterDb) {
    log(`propagation: ${opts.rounds} rounds`);
    const ops = { INSERT: [], UPDATE: [], DELETE: [] };
    for (let i = 0; i < opts.rounds; i++) {
      const key = `GET:/prop${i}`;
      const steps = [
        ['INSERT', () => c.sql('INSERT INTO functions(k, v) VALUES ($1, $2)', [key, JSON.stringify(FUNCTIONS.text(`one${i}`))]), body(`one${i}`)],
        ['UPDATE', () => c.sql('UPDATE functions SET v = $2 WHERE k = $1', [key, JSON.stringify(FUNCTIONS.text(`two${i}`))]), body(`two${i}`)],
        ['DELETE', () => c.sql('DELETE FROM functions WHERE k = $1', [key]), (a) => a.status === 404],
      ];
      for (const [op, change, served] of steps) {
        const t = await propagation(c.gateways, `/prop${i}`, change, served, { timeoutMs: opts.syncMs * 3 });
        ops[op].push(t);
        await sleep(200);
      }
    }
    data.propagation = ops;
    for (const [op, runs] of Object.entries(ops)) {
      const all = runs.map((t) => Math.max(...t.map((n) => n.sentMs ?? Infinity)));
      const each = runs.flatMap((t) => t.map((n) => n.sentMs ?? Infinity));
      rows.push([`propagation, ${op}`, `all 3 nodes: median ${fmt(median(all))}, max ${fmt(Math.max(...all))}; per node: median ${fmt(median(each))}`,
        `${opts.rounds} rounds; not served within ${opts.syncMs * 3} ms: ${each.filter((x) => !Number.isFinite(x)).length}`]);
    }

    log('catch-up after a cut link');
    await c.put('GET:/cut', FUNCTIONS.text('before'));
    await servedEverywhere(c.gateways, '/cut', body('before'));
    c.hosts.cutLink(gw3.name);
    try {
      await c.sql('UPDATE functions SET v = $2 WHERE k = $1', ['GET:/cut', JSON.stringify(FUNCTIONS.text('after'))]);
      await sleep(opts.syncMs * 1.5);
    } finally {
      c.hosts.restoreLink(gw3.name);
    }
    const back = await timeUntilServed(`${gw3.url}/cut`, body('after'), { since: performance.now(), timeoutMs: opts.syncMs * 3 + 5000 });
    data.catchUp = back;
    rows.push(['catch-up after a cut link', back.timedOut ? 'not caught up' : fmt(back.sentMs), `link down ${(opts.syncMs * 1.5) / 1000} s; sync period ${opts.syncMs} ms`]);
  } else {
    rows.push(['propagation, catch-up', 'not measured', f.reason.clusterDb]);
  }

  if (f.agentPort) {
    log(`share of ${opts.shareCalls} calls, even and with gw1 hogged`);
    await c.put('GET:/fast', FUNCTIONS.text('fast'));
    await c.put('GET:/spin', FUNCTIONS.spin(150));
    await servedEverywhere(c.gateways, '/fast', body('fast'));
    await sleep(3000); // the agents' load reports settle after the deploys' cold starts
    const evenWeights = await c.lb.servers();
    const even = await share(c.lb, c.gateways, '/fast', { tag: 'even', calls: opts.shareCalls, concurrency: opts.shareConcurrency });
    const hogged = hog(gw1, '/spin', { concurrency: 2 });
    let skewed;
    let weights;
    try {
      await sleep(3000);
      weights = await c.lb.servers();
      skewed = await share(c.lb, c.gateways, '/fast', { tag: 'skew', calls: opts.shareCalls, concurrency: opts.shareConcurrency });
    } finally {
      await hogged.stop();
    }
    data.share = { even, skewed, evenWeights, weights };
    const line = (s, w) => c.gateways.map((g) => `${g.name} ${pct(s.byNode, g.name)} (w ${w[g.name]?.weight})`).join(', ');
    rows.push(['share of calls, idle nodes', line(even, evenWeights), `${opts.shareCalls} calls, ${opts.shareConcurrency} at a time; w: the weight HAProxy took from the agent just before`]);
    rows.push(['share of calls, gw1 hogged', line(skewed, weights), 'gw1 running 2 CPU-bound calls at a time (150 ms spins) sent to it directly']);
  } else {
    rows.push(['share of calls', 'not measured', f.reason.agentPort]);
  }

  if (f.clusterRedis) {
    log('rate limit 10/s across nodes');
    await c.put('GET:/limited', { ...FUNCTIONS.text('ok'), rate_limit: { rps: 10, burst: 10 } });
    await servedEverywhere(c.gateways, '/limited', (a) => a.status === 200 || a.status === 429);
    await sleep(1200);
    const r = await rateLimited(c.lb, c.gateways, '/limited', { tag: 'rl', sendRps: 40, seconds: 5 });
    data.rateLimit = r;
    rows.push(['rate limit 10/s, burst 10', `${r.allowed} allowed in ${r.elapsedS.toFixed(1)} s = ${(r.allowed / r.elapsedS).toFixed(1)}/s (bound ${(10 * r.elapsedS + 10).toFixed(0)})`,
      `40 calls/s through HAProxy; allowed by node ${Object.entries(r.byNode).map(([n, k]) => `${n} ${k}`).join(', ')}`]);
  } else {
    rows.push(['rate limit across nodes', 'not measured', f.reason.clusterRedis]);
  }

  log(`failover: ${opts.failovers} kills`);
  await c.put('GET:/slow', FUNCTIONS.slow(100));
  await servedEverywhere(c.gateways, '/slow', body('slow'));
  data.failover = [];
  for (let i = 0; i < opts.failovers; i++) {
    const victim = [gw2, gw3, gw1][i];
    const r = await failover(c.hosts, c.lb, victim, '/slow', { tag: `fo${i}`, concurrency: 4, survivors: c.gateways.filter((g) => g !== victim) });
    data.failover.push({ victim: victim.name, ...r });
    log(`${victim.name}: DOWN after ${fmt(r.downMs)}, ${r.failed}/${r.calls} failed; starting it again`);
    await victim.start();
    for (let t = 0; t < 100 && !/^UP/.test((await c.lb.servers())[victim.name]?.status ?? ''); t++) await sleep(100);
  }
  if (data.failover.length) {
    const fo = data.failover;
    rows.push(['failover: kill → HAProxy DOWN', `median ${fmt(median(fo.map((r) => r.downMs ?? NaN)))}, max ${fmt(Math.max(...fo.map((r) => r.downMs ?? Infinity)))}`,
      `${fo.length} kills; checks every ${c.lb.interMs} ms, fall ${c.lb.fall} (examples/haproxy.cfg)`]);
    rows.push(['failover: failed calls', fo.map((r) => `${r.failed} of ${r.calls} ${JSON.stringify(r.failedStatuses)} (${r.inFlightAtKill} in flight at the kill; ` +
      `${r.failedAfterDown} after DOWN; ${r.failedElsewhere.length} answered by another node)`).join('; '),
      '4 clients, closed loop, a 100 ms function']);
  }
} catch (err) {
  log(err?.stack ?? String(err));
  exitCode = 1;
} finally {
  await cluster?.teardown();
}

if (rows.length) {
  console.log(`\n| measurement | result | conditions |\n|---|---|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
  console.log(`\n${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${(await import('node:os')).cpus().length} CPUs shared by every host; \`node scripts/cluster-bench.mjs ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'));
}
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(data, null, 2));
process.exit(exitCode);
