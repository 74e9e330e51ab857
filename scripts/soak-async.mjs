#!/usr/bin/env node
// Soak of async invocations (README "Async invocations"): minutes of open-loop sync and async
// calls on the real gateway while the gateway itself is SIGKILLed and restarted on the same
// database at random moments and workers are SIGKILLed, then an account of every async call the
// gateway accepted (answered 202) or stored: each must end succeeded or dead-lettered with its
// reason. A script, not a test: it prints a Markdown report and exits 0 only when
//   - lost = 0: no accepted call missing from the database or unfinished after the drain;
//   - run twice without a recorded retry = 0: no invocation ran twice under one attempt number;
//   - every callback the database says was delivered reached our receiver.
//
//   npm run build && node scripts/soak-async.mjs [options]
//
//   --duration S            seconds of load (600)
//   --workers N             the gateway's --workers (2)
//   --rate RPS              calls per second, Poisson arrivals, open loop (40)
//   --async-share F         share of the calls that are async (0.6)
//   --gateway-kill-every S  mean time between SIGKILLs of the gateway, each after 0.5–1.5 × S (45); 0: never
//   --worker-kill-every S   SIGKILL a random worker this often (15); 0: never
//   --drain S               after the load, how long every accepted call has to finish (180)
//   --seed N                seed of the arrivals, the mix and the chaos (1)
//   --json FILE             also write the invocations and runs as JSON
//   --log FILE              also keep the gateways' stderr (JSON log lines) in FILE
//
// Routes (inserted with better-sqlite3 into the gateway's database once it has made it):
//   POST /soak/job    node: prints `RAN <invocation id> <attempt>`, sleeps ?ms, answers 500 while the
//                     attempt is at most ?fail (fail=99: always, a dead letter by design);
//                     async {concurrency 8, retries 3, backoff_ms 200, ttl_s 3600}
//   POST /soak/py     python: prints the same, answers {"py": attempt}; async {concurrency 4}
//   POST /soak/hang   node: sleeps past timeout_ms 1000 on ?hang=1 (a FUNCTION_TIMEOUT dead letter
//                     by design); async {retries 1, backoff_ms 100}
//   GET  /soak/sync   node: the synchronous calls' route (sync calls also hit /soak/job)
// 10 % of async calls carry X-Callback-Url to a receiver in this script.
//
// The witness of runs is what functions print: the gateway logs each line with the call's request
// id. A SIGKILLed gateway loses at most its last 100 ms of log (src/protocol/log.ts), so a run
// may go unseen (never counted against the gateway); a repeated (id, attempt) pair cannot appear
// unless the function really ran twice under one number.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { eachFlag, parseFlagsOrExit, seeded, shellQuote, UsageError } from './lib/bench-helpers.mjs';
import { alive, processTree } from './lib/processes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';

function usage() {
  return 'usage: node scripts/soak-async.mjs [--duration S] [--workers N] [--rate RPS] [--async-share F] [--gateway-kill-every S]\n' +
    '         [--worker-kill-every S] [--drain S] [--seed N] [--json FILE] [--log FILE]';
}

function parseArgs(argv) {
  const o = { duration: 600, workers: 2, rate: 40, asyncShare: 0.6, gatewayKillEvery: 45, workerKillEvery: 15, drain: 180, seed: 1,
    json: undefined, log: undefined };
  const num = (flag, raw, min, max, integer = false) => {
    const n = Number(raw);
    if (String(raw).trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new UsageError(`${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    }
    return n;
  };
  eachFlag(argv, (a, value) => {
    switch (a) {
      case '--duration': o.duration = num(a, value(), 1, 86_400); break;
      case '--workers': o.workers = num(a, value(), 1, 64, true); break;
      case '--rate': o.rate = num(a, value(), 0.1, 5000); break;
      case '--async-share': o.asyncShare = num(a, value(), 0, 1); break;
      case '--gateway-kill-every': o.gatewayKillEvery = num(a, value(), 0, 86_400); break;
      case '--worker-kill-every': o.workerKillEvery = num(a, value(), 0, 86_400); break;
      case '--drain': o.drain = num(a, value(), 1, 86_400); break;
      case '--seed': o.seed = num(a, value(), 0, 2 ** 31 - 1, true); break;
      case '--json': o.json = path.resolve(value()); break;
      case '--log': o.log = path.resolve(value()); break;
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    }
  });
  return o;
}

const opts = parseFlagsOrExit('soak-async', () => parseArgs(process.argv.slice(2)), usage);
const command = ['node', 'scripts/soak-async.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (line) => process.stderr.write(`soak-async: ${line}\n`);
const rng = seeded(opts.seed);

// ---------------------------------------------------------------------------------------------
// The gateway: started, SIGKILLed and started again on the same folder

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-soak-async-'));
fs.chmodSync(tmpDir, 0o755);
const dbPath = path.join(tmpDir, 'faas.db');
const queuePath = path.join(tmpDir, 'faas-invocations.db');
const logOut = opts.log ? fs.openSync(opts.log, 'w') : undefined;
/** Every process seen in a gateway's tree (pid/starttime), killed at the end if still alive. */
const seen = new Map();
let gw; // { child, pid, http, admin, exited, exit }
const gateways = []; // { started, killedAt, recovered }
/** id → attempts the function printed, in the order seen. */
const ran = new Map();
const recoveries = [];

function rememberTree() {
  if (!gw || gw.exit) return;
  for (const p of processTree(gw.pid)) seen.set(`${p.pid}/${p.startTime}`, p);
}

function startGateway() {
  const args = ['bin/faas.js', 'gateway', '--host', HOST, '--port', '0', '--admin-port', '0', '--db', dbPath,
    '--run-dir', path.join(tmpDir, 'run'), '--workers', String(opts.workers), '--sync-ms', '1000'];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const g = { child, pid: child.pid, exit: undefined };
  let partial = '';
  child.stderr.on('data', (c) => {
    if (logOut !== undefined) fs.writeSync(logOut, c);
    const lines = (partial + c).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const m = /"text":"RAN ([A-Za-z0-9_-]{22}) (\d+)/.exec(line);
      if (m) {
        const list = ran.get(m[1]) ?? [];
        list.push(Number(m[2]));
        ran.set(m[1], list);
      } else if (line.includes('async invocations interrupted by a restart')) {
        try {
          const o = JSON.parse(line);
          recoveries.push({ requeued: o.requeued, deadLettered: o.deadLettered });
        } catch {}
      }
    }
  });
  let stdout = '';
  g.exited = new Promise((resolve) => child.once('exit', (code, signal) => { g.exit = { code, signal }; resolve(g.exit); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway did not listen within 60 s')), 60_000);
    child.stdout.on('data', (c) => {
      stdout += c;
      const m = /listening http=(\d+) admin=(\d+)/.exec(stdout);
      if (m && g.http === undefined) {
        clearTimeout(timer);
        g.http = Number(m[1]);
        g.admin = Number(m[2]);
        gw = g;
        gateways.push({ started: Date.now() });
        rememberTree();
        resolve(g);
      }
    });
    g.exited.then((e) => { clearTimeout(timer); if (g.http === undefined) reject(new Error(`the gateway exited (${e.signal ?? e.code}) before listening`)); });
  });
}

async function killGateway() {
  rememberTree();
  const g = gw;
  gw = undefined; // calls see no gateway until the next one listens
  g.child.kill('SIGKILL');
  await g.exited;
  gateways[gateways.length - 1].killedAt = Date.now();
  // Its workers see it gone (their stdin closes) and exit, their sandboxes with them.
  for (let i = 0; i < 50 && [...seen.values()].some((p) => p.pid !== g.pid && alive(p.pid, p.startTime)); i++) await sleep(100);
}

async function stopAll() {
  if (gw && !gw.exit) {
    rememberTree();
    gw.child.kill('SIGTERM');
    await Promise.race([gw.exited, sleep(15_000)]);
    if (!gw.exit) gw.child.kill('SIGKILL');
  }
  for (let i = 0; i < 30 && [...seen.values()].some((p) => alive(p.pid, p.startTime)); i++) await sleep(100);
  for (const p of seen.values()) if (alive(p.pid, p.startTime)) try { process.kill(p.pid, 'SIGKILL'); } catch {}
}

process.on('exit', () => {
  for (const p of seen.values()) if (alive(p.pid, p.startTime)) try { process.kill(p.pid, 'SIGKILL'); } catch {}
  try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch {}
});
let stopLoad = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { if (stopLoad) process.exit(130); stopLoad = true; say(`${sig}: ending the load; the report follows the drain`); });

// ---------------------------------------------------------------------------------------------
// Routes

const JOB = `export default { async fetch(request) {
  const id = request.headers.get('x-faas-invocation-id');
  const attempt = Number(request.headers.get('x-faas-attempt'));
  if (id) console.log('RAN ' + id + ' ' + attempt);
  const q = new URL(request.url).searchParams;
  const ms = Number(q.get('ms') ?? 0);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  if (id && attempt <= Number(q.get('fail') ?? 0)) return new Response('failing attempt ' + attempt, { status: 500 });
  return Response.json({ id, attempt, body: await request.text() });
} }`;
const PY = `def handle(request):
    id = request.headers.get("x-faas-invocation-id")
    attempt = request.headers.get("x-faas-attempt")
    if id:
        print("RAN " + id + " " + attempt, flush=True)
    return {"py": attempt, "id": id}
`;
const HANG = `export default { async fetch(request) {
  const id = request.headers.get('x-faas-invocation-id');
  if (id) console.log('RAN ' + id + ' ' + request.headers.get('x-faas-attempt'));
  if (new URL(request.url).searchParams.get('hang') === '1') await new Promise((r) => setTimeout(r, 5000));
  return new Response('done');
} }`;
const SYNC = "export default { fetch() { return new Response('sync ok') } }";
const ROUTES = [
  ['POST:/soak/job', { runtime: 'node', code: JOB, async: { concurrency: 8, retries: 3, backoff_ms: 200, ttl_s: 3600 } }],
  ['POST:/soak/py', { runtime: 'python', code: PY, async: { concurrency: 4, retries: 3, backoff_ms: 200, ttl_s: 3600 } }],
  ['POST:/soak/hang', { runtime: 'node', code: HANG, timeout_ms: 1000, async: { concurrency: 4, retries: 1, backoff_ms: 100, ttl_s: 3600 } }],
  ['GET:/soak/sync', { runtime: 'node', code: SYNC }],
];

async function insertRoutes() {
  const db = new Database(dbPath);
  db.pragma('busy_timeout = 5000');
  const insert = db.prepare('INSERT OR REPLACE INTO functions(k, v) VALUES (?, ?)');
  for (const [k, v] of ROUTES) insert.run(k, JSON.stringify(v));
  db.close();
  for (let i = 0; i < 100; i++) {
    const routes = await (await fetch(`http://${HOST}:${gw.admin}/routes`)).json();
    if (ROUTES.every(([k]) => routes.routes.some((r) => r.key === k && r.state === 'ok'))) return;
    await sleep(200);
  }
  throw new Error('the soak routes were not served within 20 s');
}

// ---------------------------------------------------------------------------------------------
// Callbacks: a receiver of our own

const callbacks = new Map(); // id → deliveries received
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const id = req.headers['x-call-id'];
    if (typeof id === 'string') callbacks.set(id, (callbacks.get(id) ?? 0) + 1);
    res.writeHead(204).end();
  });
});
await new Promise((r) => receiver.listen(0, HOST, r));
const callbackUrl = `http://${HOST}:${receiver.address().port}/hook`;

// ---------------------------------------------------------------------------------------------
// Load

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
const accepted = new Map(); // request id → { id, route, expect: 'succeeded' | 'failed', callback }
const refused = new Map(); // async calls not accepted: why → count
const sync = { sent: 0, ok: 0, failed: new Map() };
let seq = 0;

function plan() {
  seq++;
  const r = rng();
  if (r >= opts.asyncShare) {
    const toJob = rng() < 0.3;
    return { seq, async: false, method: toJob ? 'POST' : 'GET', path: toJob ? '/soak/job?ms=5' : '/soak/sync' };
  }
  const kind = rng();
  const c = { seq, async: true, method: 'POST', expect: 'succeeded', callback: rng() < 0.1 };
  if (kind < 0.55) c.path = `/soak/job?ms=${Math.floor(rng() * 100)}`;
  else if (kind < 0.70) c.path = `/soak/job?ms=10&fail=${1 + Math.floor(rng() * 2)}`; // fails once or twice, then succeeds
  else if (kind < 0.74) { c.path = '/soak/job?fail=99'; c.expect = 'failed'; }
  else if (kind < 0.92) c.path = '/soak/py';
  else if (kind < 0.97) c.path = '/soak/hang';
  else { c.path = '/soak/hang?hang=1'; c.expect = 'failed'; }
  c.route = `POST:${c.path.split('?')[0]}`;
  return c;
}

function send(c) {
  return new Promise((resolve) => {
    const g = gw;
    if (!g) return resolve({ error: 'no gateway (restarting)' });
    const headers = { 'x-request-id': `soak-${c.seq}` };
    if (c.async) {
      headers['x-faas-invocation-type'] = 'Event';
      if (c.callback) headers['x-callback-url'] = callbackUrl;
    }
    const body = c.method === 'POST' ? Buffer.from(`call ${c.seq}`) : undefined;
    if (body) headers['content-length'] = String(body.length);
    const req = http.request({ host: HOST, port: g.http, method: c.method, path: c.path, headers, agent, timeout: 30_000 }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts).toString() }));
      res.on('error', (e) => resolve({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
    req.end(body);
  });
}

async function call(c) {
  const r = await send(c);
  if (!c.async) {
    sync.sent++;
    const why = r.error ?? (r.status >= 200 && r.status < 300 ? undefined : `${r.status} ${safeCode(r.body)}`);
    if (why === undefined) sync.ok++;
    else sync.failed.set(why, (sync.failed.get(why) ?? 0) + 1);
    return;
  }
  if (r.status === 202) {
    const id = JSON.parse(r.body).invocationId;
    accepted.set(`soak-${c.seq}`, { id, route: c.route, expect: c.expect, callback: c.callback, seq: c.seq });
  } else {
    const why = r.error ?? `${r.status} ${safeCode(r.body)}`;
    refused.set(why, (refused.get(why) ?? 0) + 1);
  }
}

function safeCode(body) {
  try { return JSON.parse(body).code ?? ''; } catch { return ''; }
}

// ---------------------------------------------------------------------------------------------
// Chaos

const gatewayKills = [];
const workerKills = [];

async function chaosGateway(until) {
  if (opts.gatewayKillEvery <= 0) return;
  for (;;) {
    await sleep(opts.gatewayKillEvery * 1000 * (0.5 + rng()));
    if (stopLoad || Date.now() >= until || !gw) return;
    const t = Date.now();
    await killGateway();
    await sleep(200 + rng() * 800);
    await startGateway();
    gatewayKills.push({ at: t, downMs: Date.now() - t });
    say(`gateway SIGKILLed and restarted (${Date.now() - t} ms without one)`);
  }
}

async function chaosWorkers(until) {
  if (opts.workerKillEvery <= 0) return;
  for (;;) {
    await sleep(opts.workerKillEvery * 1000);
    if (stopLoad || Date.now() >= until) return;
    const g = gw;
    if (!g) continue;
    try {
      const workers = (await (await fetch(`http://${HOST}:${g.admin}/workers`)).json()).filter((w) => w.pid !== null && w.connected);
      if (workers.length === 0) continue;
      const w = workers[Math.floor(rng() * workers.length)];
      rememberTree();
      process.kill(w.pid, 'SIGKILL');
      workerKills.push({ at: Date.now(), worker: w.id });
    } catch { /* the gateway went meanwhile */ }
  }
}

// ---------------------------------------------------------------------------------------------
// The run

await startGateway();
await insertRoutes();
say(`gateway up (pid ${gw.pid}), routes served; ${opts.duration} s of load at ${opts.rate}/s, ${Math.round(opts.asyncShare * 100)} % async`);
const t0 = Date.now();
const until = t0 + opts.duration * 1000;
const inFlight = new Set();
const chaos = [chaosGateway(until), chaosWorkers(until)];
let next = t0;
while (!stopLoad && Date.now() < until) {
  next += -Math.log(1 - rng()) * 1000 / opts.rate;
  const wait = next - Date.now();
  if (wait > 0) await sleep(wait);
  const p = call(plan());
  inFlight.add(p);
  p.finally(() => inFlight.delete(p));
  if (seq % 2000 === 0) say(`t=${Math.round((Date.now() - t0) / 1000)} s: ${accepted.size} accepted, ${sync.sent} sync, ${gatewayKills.length} gateway kills`);
}
stopLoad = true;
await Promise.all(inFlight);
await Promise.all(chaos);
if (!gw) await startGateway();
say(`load over: ${accepted.size} async calls accepted; draining (up to ${opts.drain} s)`);

/** Every stored invocation, read-only from the queue's file (the gateway keeps writing it). */
function readQueue() {
  const db = new Database(queuePath, { readonly: true });
  db.pragma('busy_timeout = 5000');
  try {
    return db.prepare('SELECT id, route, request_id, state, attempts, error_code, error, callback_url, callback_state FROM invocations').all();
  } finally {
    db.close();
  }
}

const drainUntil = Date.now() + opts.drain * 1000;
let rows = readQueue();
for (;;) {
  const open = rows.filter((r) => r.state === 'queued' || r.state === 'running' || r.callback_state === 'pending');
  if (open.length === 0 || Date.now() > drainUntil) break;
  await sleep(1000);
  rows = readQueue();
}
await sleep(1500); // the last callbacks' answers reach the receiver's counters
rows = readQueue();
const elapsed = (Date.now() - t0) / 1000;
await stopAll();
receiver.close();

// ---------------------------------------------------------------------------------------------
// The account

const byRequest = new Map(rows.map((r) => [r.request_id, r]));
const lost = [];
const unfinished = [];
const wrongOutcome = [];
for (const [rid, a] of accepted) {
  const row = byRequest.get(rid);
  if (!row || row.id !== a.id) lost.push({ requestId: rid, id: a.id });
  else if (row.state !== 'succeeded' && row.state !== 'failed') unfinished.push({ id: a.id, state: row.state });
  else if (row.state !== a.expect && !(row.state === 'failed' && row.error_code === 'GATEWAY_RESTARTED')) wrongOutcome.push({ id: a.id, route: a.route, expected: a.expect, got: row.state, error: row.error_code });
}
const storedWithout202 = rows.filter((r) => !accepted.has(r.request_id));
const states = count(rows.map((r) => r.state));
const reasons = count(rows.filter((r) => r.state === 'failed').map((r) => `${r.error_code}${r.error_code === 'GATEWAY_RESTARTED' || accepted.get(r.request_id)?.expect === 'failed' ? '' : ' (not by design)'}`));
const retried = rows.filter((r) => r.attempts > 1);
const retriesRecorded = rows.reduce((n, r) => n + Math.max(0, r.attempts - 1), 0);
let runsSeen = 0;
let ranMoreThanOnce = 0;
const twiceSameAttempt = [];
const beyondRecorded = [];
const rowById = new Map(rows.map((r) => [r.id, r]));
for (const [id, attempts] of ran) {
  runsSeen += attempts.length;
  if (attempts.length > 1) ranMoreThanOnce++;
  if (new Set(attempts).size !== attempts.length) twiceSameAttempt.push({ id, attempts });
  const row = rowById.get(id);
  if (row && Math.max(...attempts) > row.attempts) beyondRecorded.push({ id, attempts, recorded: row.attempts });
}
const withCallback = rows.filter((r) => r.callback_url !== null);
const cbStates = count(withCallback.map((r) => r.callback_state ?? 'none'));
const deliveredNotReceived = withCallback.filter((r) => r.callback_state === 'delivered' && !callbacks.has(r.id));
const receivedTwice = [...callbacks.values()].filter((n) => n > 1).length;

function count(xs) {
  const m = new Map();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1]);
}

const ok = lost.length === 0 && unfinished.length === 0 && twiceSameAttempt.length === 0 && beyondRecorded.length === 0 && deliveredNotReceived.length === 0;
const md = [];
md.push(`### Async soak, ${new Date().toISOString().slice(0, 10)}`, '');
md.push(`${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}; ${elapsed.toFixed(0)} s in all (${opts.duration} s of load, then the drain)`);
md.push(`command: ${command}`, '');
md.push('| | |', '|---|---|');
md.push(`| async calls accepted (202) | ${accepted.size} |`);
md.push(`| stored without a 202 seen (the kill cut the answer) | ${storedWithout202.length} |`);
md.push(`| async calls not accepted | ${refused.size === 0 ? 0 : count([...refused].flatMap(([k, n]) => Array(n).fill(k))).map(([k, n]) => `${n} ${k}`).join(', ')} |`);
md.push(`| invocations stored, by final state | ${states.map(([s, n]) => `${n} ${s}`).join(', ')} |`);
md.push(`| dead letters, by reason | ${reasons.length === 0 ? 'none' : reasons.map(([s, n]) => `${n} ${s}`).join(', ')} |`);
md.push(`| accepted calls **lost** (not in the database) | **${lost.length}** |`);
md.push(`| accepted calls **unfinished** after the drain (queued or running) | **${unfinished.length}** |`);
md.push(`| outcome other than designed (a normal call dead-lettered, a failing one succeeding; GATEWAY_RESTARTED excepted) | ${wrongOutcome.length} |`);
md.push(`| retries recorded (attempts beyond the first) / invocations retried | ${retriesRecorded} / ${retried.length} |`);
md.push(`| runs seen (functions' RAN lines) / invocations seen running more than once | ${runsSeen} / ${ranMoreThanOnce} |`);
md.push(`| **run twice without a recorded retry** (one attempt number twice, or past the attempts recorded) | **${twiceSameAttempt.length + beyondRecorded.length}** |`);
md.push(`| callbacks: invocations with one, by state / received by the receiver / delivered but never received / received more than once | ${cbStates.map(([s, n]) => `${n} ${s}`).join(', ') || 'none'} / ${callbacks.size} / ${deliveredNotReceived.length} / ${receivedTwice} |`);
md.push(`| gateway SIGKILLs (mean time without a gateway) | ${gatewayKills.length} (${gatewayKills.length ? Math.round(gatewayKills.reduce((n, k) => n + k.downMs, 0) / gatewayKills.length) : 0} ms) |`);
md.push(`| restarts that found attempts running: requeued / dead-lettered | ${recoveries.length}: ${recoveries.reduce((n, r) => n + r.requeued, 0)} / ${recoveries.reduce((n, r) => n + r.deadLettered, 0)} |`);
md.push(`| worker SIGKILLs | ${workerKills.length} |`);
md.push(`| sync calls: sent / 2xx / other | ${sync.sent} / ${sync.ok} / ${count([...sync.failed].flatMap(([k, n]) => Array(n).fill(k))).map(([k, n]) => `${n} ${k}`).join(', ') || 0} |`);
md.push('', ok ? 'Every accepted async call finished or was dead-lettered with its reason; none ran twice under one attempt number.'
  : `NOT OK: ${JSON.stringify({ lost: lost.slice(0, 5), unfinished: unfinished.slice(0, 5), twiceSameAttempt: twiceSameAttempt.slice(0, 5), beyondRecorded: beyondRecorded.slice(0, 5), deliveredNotReceived: deliveredNotReceived.slice(0, 5).map((r) => r.id) })}`);
if (wrongOutcome.length > 0) md.push('', `Outcomes other than designed (first 5): ${JSON.stringify(wrongOutcome.slice(0, 5))}`);
process.stdout.write(md.join('\n') + '\n');
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ opts, accepted: [...accepted.values()], rows, ran: [...ran], gatewayKills, workerKills, recoveries }, null, 1));
process.exit(ok ? 0 : 1);
