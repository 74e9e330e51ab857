#!/usr/bin/env node
// Soak test of the real gateway: minutes of mixed, open-loop load while workers are SIGKILLed and
// routes are changed with SQL underneath it, then a report of every call that did not get a 2xx
// (each one labelled EXPECTED or UNEXPLAINED), every call that got no HTTP answer at all ("lost"),
// and the gateway's memory over time. A script, not a test: it prints a report and exits 0 when
// nothing went unexplained and nothing was lost, 1 otherwise.
//
//   npm run build && node scripts/soak.mjs [options]      (npm run soak -- [options])
//
//   --duration S       seconds of load (600)
//   --workers N        the gateway's --workers (2)
//   --rate RPS         calls per second, Poisson arrivals, open loop (200)
//   --kill-every S     SIGKILL a random worker this often; 0: never (20)
//   --churn-every S    one SQL change to the routes this often; 0: never (3)
//   --sample-every S   sample RSS (gateway, workers, sandboxes) and /metrics this often (5)
//   --seed N           seed of the arrivals, the route mix and the chaos (1)
//   --clients N        keep-alive HTTP clients (agents) the calls are spread over (4)
//   --kill-window S    how long after a kill 502/503 answers count as caused by it (5)
//   --call-timeout S   a call with no complete answer after this long is lost (35)
//   --warmup S         memory growth is measured from the first sample at or after this (60;
//                      half the duration when the run is shorter than twice it)
//   --json FILE        also write everything (calls by group, samples, kills, changes) as JSON
//   --log FILE         also keep the gateway's stderr (JSON log lines) in FILE
//
// What runs: `node bin/faas.js gateway --host 127.0.0.1 --port 0 --admin-port 0 --db DIR/faas.db
// --run-dir DIR/run --workers N --sync-ms 1000` in a fresh temp dir (mode 755: sandboxes run as
// uid 65534), and these routes, inserted with better-sqlite3 (the demo routes stay, uncalled):
//
//   GET  /soak/noop      node, Workers style, answers "noop ok"
//   POST /soak/echo      node, Lambda style, echoes the JSON body
//   GET  /soak/py        python, answers {"py": "ok", "n": <query n>}
//   GET  /soak/flaky     node, throws when ?throw=1 (the client asks on ~30 % of calls) -> 500
//   GET  /soak/sleepy    node, sleeps ?ms=; timeout_ms 1000; ~10 % of calls ask for 1500 -> 504
//   GET  /soak/limited   node, rate_limit {rps: 5, burst: 10} (per client IP: all of ours) -> 429
//   GET  /soak/private   node, "auth": "api-key"; a key from `faas keys create`, a wrong key on
//                        ~8 % of calls and none on ~2 % -> 401; answers "LEAK" if it sees the key
//   GET  /soak/tmp       inserted and deleted by the churn -> 404 while it is gone
//
// Chaos, seeded: every --kill-every s, a worker listed by GET /workers on the admin port (and a
// child of our gateway) gets SIGKILL; every --churn-every s, one change with a connection of its
// own: a route's code replaced by a new version that answers the same, the temporary route
// inserted or deleted, or a field toggled (env, timeout_ms, max_concurrency, memory_mb, min_warm).
//
// Labels. EXPECTED: 500 FUNCTION_ERROR on a flaky call that asked to throw; 504 on a sleepy call
// that asked to sleep past timeout_ms, or a short one whose 504 says no instance became free in
// time (a cold start that lost the race); 429 RATE_LIMITED on /soak/limited; 401 API_KEY_INVALID /
// API_KEY_MISSING on a private call sent with a wrong key / none; 404/405 on /soak/tmp while it
// was gone or within 2 sync periods + 1 s of its insert/delete; 502 WORKER_DIED/FUNCTION_CRASHED
// and 503 NO_WORKER_AVAILABLE/FUNCTION_AT_CAPACITY on a call in flight during --kill-window
// seconds after a kill. Anything else non-2xx is UNEXPLAINED, and so is a 2xx with a wrong answer
// (a body other than the function's, a throw or a timeout that did not happen, a key that reached
// the function or a wrong key let through, a deleted route still served past the window).
//
// The Markdown report goes to stdout, progress to stderr. Every process this script starts is
// stopped on exit, on SIGINT/SIGTERM/SIGHUP (the first one ends the load early and still reports)
// and on errors: SIGTERM to the gateway (it stops its workers), SIGKILL after 10 s, then SIGKILL by
// pid for any process of its tree that is still alive; the temp dir is removed. Only 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { eachFlag, parseFlagsOrExit, seeded, shellQuote, UsageError } from './lib/bench-helpers.mjs';
import { alive, cmdline, procStat, processTree } from './lib/processes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
const SYNC_MS = 1000;
const SLEEPY_TIMEOUT_MS = 1000;
const SLEEPY_LONG_MS = 1500;
const SLEEPY_SHORT_MS = 5;

// ---------------------------------------------------------------------------------------------
// Options

function usage() {
  return 'usage: node scripts/soak.mjs [--duration S] [--workers N] [--rate RPS] [--kill-every S] [--churn-every S]\n' +
    '         [--sample-every S] [--seed N] [--clients N] [--kill-window S] [--call-timeout S] [--warmup S] [--json FILE] [--log FILE]';
}

function parseArgs(argv) {
  const o = {
    duration: 600, workers: 2, rate: 200, killEvery: 20, churnEvery: 3, sampleEvery: 5, seed: 1, clients: 4,
    killWindow: 5, callTimeout: 35, warmup: 60, json: undefined, log: undefined,
  };
  const num = (flag, raw, min, max, integer = false) => {
    const n = Number(raw);
    if (raw === undefined || String(raw).trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new UsageError(`${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    }
    return n;
  };
  eachFlag(argv, (a, value) => {
    switch (a) {
      case '--duration': o.duration = num(a, value(), 1, 86_400); break;
      case '--workers': o.workers = num(a, value(), 1, 256, true); break;
      case '--rate': o.rate = num(a, value(), 0.1, 20_000); break;
      case '--kill-every': o.killEvery = num(a, value(), 0, 86_400); break;
      case '--churn-every': o.churnEvery = num(a, value(), 0, 86_400); break;
      case '--sample-every': o.sampleEvery = num(a, value(), 0.5, 3600); break;
      case '--seed': o.seed = num(a, value(), 0, 2 ** 31 - 1, true); break;
      case '--clients': o.clients = num(a, value(), 1, 64, true); break;
      case '--kill-window': o.killWindow = num(a, value(), 0, 600); break;
      case '--call-timeout': o.callTimeout = num(a, value(), 1, 3600); break;
      case '--warmup': o.warmup = num(a, value(), 0, 86_400); break;
      case '--json': o.json = path.resolve(value()); break;
      case '--log': o.log = path.resolve(value()); break;
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    }
  });
  return o;
}

const opts = parseFlagsOrExit('soak', () => parseArgs(process.argv.slice(2)), usage);
const command = ['node', 'scripts/soak.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (line) => process.stderr.write(`soak: ${line}\n`);

// ---------------------------------------------------------------------------------------------
// /proc

/** VmRSS in KiB, or undefined when the process is gone (or a zombie, which has none). */
function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch { return undefined; }
}

/** Every process ever seen in the gateway's tree, by pid/starttime: what cleanup may kill. */
const seen = new Map();
function remember(procs) {
  for (const p of procs) {
    const key = `${p.pid}/${p.startTime}`;
    if (!seen.has(key)) seen.set(key, { pid: p.pid, startTime: p.startTime, comm: p.comm });
  }
}

// ---------------------------------------------------------------------------------------------
// The gateway: start, watch, stop

let tmpDir;
let gw; // { child, pid, http, admin, exited: Promise, exit: {code, signal, at} | undefined, logFile }
const stderrTail = [];

function startGateway() {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-soak-'));
  fs.chmodSync(tmpDir, 0o755);
  const args = ['bin/faas.js', 'gateway', '--host', HOST, '--port', '0', '--admin-port', '0',
    '--db', path.join(tmpDir, 'faas.db'), '--run-dir', path.join(tmpDir, 'run'), '--workers', String(opts.workers), '--sync-ms', String(SYNC_MS)];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const logFile = path.join(tmpDir, 'gateway.log');
  const logFd = fs.openSync(logFile, 'a');
  // Keep draining both pipes for the whole run (a full pipe would stall the gateway); stderr goes to a file.
  let partial = '';
  child.stderr.on('data', (c) => {
    try { fs.writeSync(logFd, c); } catch {}
    const lines = (partial + c).split('\n');
    partial = lines.pop();
    stderrTail.push(...lines);
    if (stderrTail.length > 200) stderrTail.splice(0, stderrTail.length - 200);
  });
  let stdout = '';
  child.stdout.on('data', (c) => { stdout = (stdout + c).slice(-8000); });
  child.once('error', () => {});
  const g = { child, pid: child.pid, logFile, exit: undefined, args };
  g.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      g.exit = { code, signal, at: performance.now() };
      try { fs.closeSync(logFd); } catch {}
      resolve(g.exit);
    });
    child.once('error', (error) => { if (child.pid === undefined) { g.exit = { code: null, signal: null, error }; resolve(g.exit); } });
  });
  gw = g;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not print "listening http=PORT admin=PORT" within 60 s\nstdout:\n${stdout}\nstderr:\n${stderrTail.join('\n')}`)), 60_000);
    const onData = () => {
      const m = /listening http=(\d+) admin=(\d+)/.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      g.http = Number(m[1]);
      g.admin = Number(m[2]);
      resolve(g);
    };
    child.stdout.on('data', onData);
    g.exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      reject(new Error(`the gateway ${error ? `could not start: ${error.message}` : `exited (${signal ?? `code ${code}`})`} before it was listening\nstdout:\n${stdout}\nstderr:\n${stderrTail.join('\n')}`));
    });
  });
}

const gatewayAlive = () => gw !== undefined && gw.exit === undefined;

let stopping;
/** SIGTERM the gateway, SIGKILL after 10 s, then SIGKILL every process of its tree still alive. */
function stopGateway() {
  stopping ??= (async () => {
    const result = { termSeconds: undefined, sigkilledGateway: false, leftovers: [] };
    if (!gw || gw.child.pid === undefined) return result;
    if (gatewayAlive()) remember(processTree(gw.pid));
    if (gatewayAlive()) {
      const t0 = performance.now();
      try { gw.child.kill('SIGTERM'); } catch {}
      await Promise.race([gw.exited, sleep(10_000)]);
      if (gatewayAlive()) {
        say(`the gateway (pid ${gw.pid}) ignored SIGTERM for 10 s; SIGKILL`);
        result.sigkilledGateway = true;
        try { gw.child.kill('SIGKILL'); } catch {}
        await Promise.race([gw.exited, sleep(3000)]);
      }
      result.termSeconds = (performance.now() - t0) / 1000;
    }
    // The gateway stops its workers and they their sandboxes (1 s grace): wait for them a little.
    const others = () => [...seen.values()].filter((p) => p.pid !== gw.pid && alive(p.pid, p.startTime));
    for (let i = 0; i < 30 && others().length; i++) await sleep(100);
    for (const p of others()) {
      result.leftovers.push({ pid: p.pid, comm: p.comm, cmdline: cmdline(p.pid).slice(0, 160) });
      say(`${p.comm} (pid ${p.pid}) outlived the gateway by 3 s; SIGKILL`);
      try { process.kill(p.pid, 'SIGKILL'); } catch {}
    }
    return result;
  })();
  return stopping;
}

function removeTmpDir() {
  if (tmpDir) try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch {}
  tmpDir = undefined;
}

// Last resort when the event loop is gone: SIGKILL synchronously.
process.on('exit', () => {
  if (gatewayAlive()) try { gw.child.kill('SIGKILL'); } catch {}
  for (const p of seen.values()) if (gw && p.pid !== gw.pid && alive(p.pid, p.startTime)) try { process.kill(p.pid, 'SIGKILL'); } catch {}
  removeTmpDir();
});

let signalled; // the exit code of the first signal
let stopLoad = false;
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    if (signalled === undefined) {
      signalled = code;
      stopLoad = true;
      say(`${sig}: ending the load now; the report covers what ran (again to stop at once)`);
      return;
    }
    stopGateway().finally(() => { removeTmpDir(); process.exit(code); });
  });
}

// ---------------------------------------------------------------------------------------------
// Routes and the SQL changes

const NODE_NOOP = 'export default { fetch() { return new Response("noop ok") } }';
const NODE_ECHO = "exports.handler = async (event) => ({ statusCode: 200, headers: { 'content-type': event.headers['content-type'] || 'application/octet-stream' }, body: event.body, isBase64Encoded: event.isBase64Encoded })";
const PY = 'def handle(request):\n    return {"py": "ok", "n": request.query.get("n")}\n';
const NODE_FLAKY = 'export default { fetch(r) { if (new URL(r.url).searchParams.get("throw") === "1") throw new Error("soak: asked to throw"); return new Response("flaky ok") } }';
const NODE_SLEEPY = 'export default { async fetch(r) { const ms = Number(new URL(r.url).searchParams.get("ms")); await new Promise((res) => setTimeout(res, ms)); return new Response("slept " + ms) } }';
const NODE_LIMITED = 'export default { fetch() { return new Response("limited ok") } }';
const NODE_PRIVATE = 'export default { fetch(r) { return new Response(r.headers.has("x-api-key") || r.headers.has("authorization") ? "LEAK" : "private ok") } }';
const NODE_TMP = 'export default { fetch() { return new Response("tmp ok") } }';

/** The routes: key, config, and what the code looks like when a new version is made. */
const ROUTES = {
  noop: { key: 'GET:/soak/noop', v: { runtime: 'node', code: NODE_NOOP } },
  echo: { key: 'POST:/soak/echo', v: { runtime: 'node', code: NODE_ECHO } },
  py: { key: 'GET:/soak/py', v: { runtime: 'python', code: PY } },
  flaky: { key: 'GET:/soak/flaky', v: { runtime: 'node', code: NODE_FLAKY } },
  sleepy: { key: 'GET:/soak/sleepy', v: { runtime: 'node', code: NODE_SLEEPY, timeout_ms: SLEEPY_TIMEOUT_MS } },
  limited: { key: 'GET:/soak/limited', v: { runtime: 'node', code: NODE_LIMITED, rate_limit: { rps: 5, burst: 10 } } },
  private: { key: 'GET:/soak/private', v: { runtime: 'node', code: NODE_PRIVATE, auth: 'api-key' } },
  tmp: { key: 'GET:/soak/tmp', v: { runtime: 'node', code: NODE_TMP } },
};
const ROUTE_PATH = Object.fromEntries(Object.entries(ROUTES).map(([n, r]) => [n, r.key.slice(r.key.indexOf(':') + 1)]));
/** Share of the calls each route gets. */
const MIX = [['noop', 28], ['echo', 18], ['py', 14], ['flaky', 10], ['sleepy', 4], ['limited', 8], ['private', 14], ['tmp', 4]];
const MIX_TOTAL = MIX.reduce((a, [, w]) => a + w, 0);

/** The fields the churn toggles, on which route, between which values (none changes an answer). */
const TOGGLES = [
  { route: 'noop', field: '$.env', values: (n) => JSON.stringify({ SOAK_GEN: String(n) }), json: true },
  { route: 'noop', field: '$.timeout_ms', values: (n) => (n % 2 ? 20_000 : 30_000) },
  { route: 'echo', field: '$.max_concurrency', values: (n) => (n % 2 ? 50 : 100) },
  { route: 'py', field: '$.memory_mb', values: (n) => (n % 2 ? 96 : 128) },
  { route: 'flaky', field: '$.min_warm', values: (n) => (n % 2 ? 1 : 0) },
  { route: 'limited', field: '$.timeout_ms', values: (n) => (n % 2 ? 10_000 : 30_000) },
];
const CODE_UPDATABLE = ['noop', 'echo', 'py', 'flaky', 'sleepy', 'limited', 'private'];

function openDb() {
  return new Database(path.join(tmpDir, 'faas.db'), { timeout: 5000 });
}

function insertRoutes() {
  const db = openDb();
  try {
    const insert = db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    db.transaction(() => {
      for (const [name, r] of Object.entries(ROUTES)) if (name !== 'tmp') insert.run(r.key, JSON.stringify(r.v));
    })();
  } finally { db.close(); }
}

function createKey() {
  const r = spawnSync(process.execPath, ['bin/faas.js', 'keys', 'create', 'soak', '--db', path.join(tmpDir, 'faas.db')], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`faas keys create soak failed (${r.status}): ${r.stderr}`);
  const key = r.stdout.trim();
  if (!key) throw new Error('faas keys create printed no key');
  return key;
}

const churn = { events: [], tmpPresent: false, tmpChanges: [], version: 0, toggleCount: new Map() };

/** One SQL change, seeded, with a connection of its own. */
function churnOnce(rng, t) {
  const kind = ['update-code', 'temp-route', 'toggle-field'][Math.floor(rng() * 3)];
  const db = openDb();
  const ev = { t, kind };
  try {
    if (kind === 'update-code') {
      const name = CODE_UPDATABLE[Math.floor(rng() * CODE_UPDATABLE.length)];
      const n = ++churn.version;
      const base = ROUTES[name].v.code;
      const code = ROUTES[name].v.runtime === 'python' ? `${base}# soak version ${n}\n` : `${base}\n// soak version ${n}\n`;
      const r = db.prepare("UPDATE functions SET v = json_set(v, '$.code', ?) WHERE k = ?").run(code, ROUTES[name].key);
      Object.assign(ev, { key: ROUTES[name].key, detail: `code version ${n}`, changes: r.changes });
    } else if (kind === 'temp-route') {
      if (churn.tmpPresent) {
        const r = db.prepare('DELETE FROM functions WHERE k = ?').run(ROUTES.tmp.key);
        Object.assign(ev, { key: ROUTES.tmp.key, detail: 'DELETE', changes: r.changes });
      } else {
        const r = db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(ROUTES.tmp.key, JSON.stringify(ROUTES.tmp.v));
        Object.assign(ev, { key: ROUTES.tmp.key, detail: 'INSERT', changes: r.changes });
      }
      churn.tmpPresent = !churn.tmpPresent;
      churn.tmpChanges.push({ t, present: churn.tmpPresent });
    } else {
      const tg = TOGGLES[Math.floor(rng() * TOGGLES.length)];
      const id = `${tg.route}${tg.field}`;
      const n = (churn.toggleCount.get(id) ?? 0) + 1;
      churn.toggleCount.set(id, n);
      const value = tg.values(n);
      const sql = tg.json ? "UPDATE functions SET v = json_set(v, ?, json(?)) WHERE k = ?" : 'UPDATE functions SET v = json_set(v, ?, ?) WHERE k = ?';
      const r = db.prepare(sql).run(tg.field, value, ROUTES[tg.route].key);
      Object.assign(ev, { key: ROUTES[tg.route].key, detail: `${tg.field.slice(2)} = ${value}`, changes: r.changes });
    }
  } catch (err) {
    ev.error = err.message;
    say(`churn ${kind} failed: ${err.message}`);
  } finally { db.close(); }
  churn.events.push(ev);
}

// ---------------------------------------------------------------------------------------------
// Calls

let apiKey;
let agents;

/** What one call asks for and what a right answer looks like: chosen by the seeded mix. */
function planCall(seq, rng) {
  let x = rng() * MIX_TOTAL;
  let route = MIX[MIX.length - 1][0];
  for (const [name, w] of MIX) { if ((x -= w) < 0) { route = name; break; } }
  const c = { seq, route, method: 'GET', path: ROUTE_PATH[route], headers: {}, intent: '' };
  switch (route) {
    case 'noop': c.expect = 'noop ok'; break;
    case 'echo':
      c.method = 'POST';
      c.body = JSON.stringify({ seq, pad: 'x'.repeat(Math.floor(rng() * 512)) });
      c.headers['content-type'] = 'application/json';
      c.expect = c.body;
      break;
    case 'py': c.path += `?n=${seq}`; c.expectJson = { py: 'ok', n: String(seq) }; break;
    case 'flaky':
      c.intent = rng() < 0.3 ? 'throw' : 'ok';
      c.path += `?throw=${c.intent === 'throw' ? 1 : 0}`;
      c.expect = 'flaky ok';
      break;
    case 'sleepy': {
      c.intent = rng() < 0.1 ? 'long' : 'short';
      const ms = c.intent === 'long' ? SLEEPY_LONG_MS : SLEEPY_SHORT_MS;
      c.path += `?ms=${ms}`;
      c.expect = `slept ${ms}`;
      break;
    }
    case 'limited': c.expect = 'limited ok'; break;
    case 'private': {
      const r = rng();
      c.intent = r < 0.08 ? 'wrong key' : r < 0.1 ? 'no key' : 'key';
      if (c.intent === 'key') c.headers['x-api-key'] = apiKey;
      else if (c.intent === 'wrong key') c.headers['x-api-key'] = `soak-wrong-${seq}`;
      c.expect = 'private ok';
      break;
    }
    case 'tmp': c.expect = 'tmp ok'; break;
  }
  return c;
}

/** Sends one call; resolves with its answer or, when none came, `error`. Never rejects. */
function send(c, timeoutMs) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => { if (!done) { done = true; clearTimeout(timer); resolve(r); } };
    const headers = { ...c.headers, 'x-request-id': `soak-${c.seq}` };
    let body;
    if (c.body !== undefined) { body = Buffer.from(c.body); headers['content-length'] = String(body.length); }
    const req = http.request({ host: HOST, port: gw.http, method: c.method, path: c.path, headers, agent: agents[c.seq % agents.length] }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (chunk) => { if (size < 1 << 20) chunks.push(chunk); size += chunk.length; });
      res.on('end', () => finish({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), worker: res.headers['x-faas-worker'] }));
      res.on('error', (e) => finish({ error: `response cut off after status ${res.statusCode}: ${e.code ?? e.message}`, partialStatus: res.statusCode }));
      res.on('close', () => { if (!res.complete) finish({ error: `response cut off after status ${res.statusCode}`, partialStatus: res.statusCode }); });
    });
    const timer = setTimeout(() => {
      finish({ error: `no complete answer within ${timeoutMs / 1000} s (client timeout)` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => finish({ error: e.code ? `${e.code}: ${e.message}` : e.message }));
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// What happened: classification

const kills = []; // { t, at, worker, pid, descendants, survivors }
let loadStart = 0; // performance.now() when the load began
const tNow = () => performance.now() - loadStart;

function lastBefore(events, t) {
  let best;
  for (const e of events) if (e.t <= t && (!best || e.t > best.t)) best = e;
  return best;
}

function tmpPresentAt(t) {
  let present = false;
  for (const ch of churn.tmpChanges) if (ch.t <= t) present = ch.present;
  return present;
}

/** { label: 'EXPECTED' | 'UNEXPLAINED', why } for an answered call that was not a right 2xx. */
function classify(r) {
  const { status, code, route, intent } = r;
  const window = 2 * SYNC_MS + 1000;
  const tmpChangedAround = churn.tmpChanges.some((ch) => ch.t >= r.t0 - window && ch.t <= r.t1);
  if (status >= 200 && status < 300) {
    // A 2xx that should not have been one, or with the wrong body.
    if (route === 'tmp' && !tmpPresentAt(r.t0) && !tmpChangedAround) return { label: 'UNEXPLAINED', why: 'a deleted route was still served past 2 sync periods + 1 s' };
    return { label: 'UNEXPLAINED', why: r.wrong };
  }
  if (route === 'flaky' && status === 500 && code === 'FUNCTION_ERROR' && intent === 'throw') return { label: 'EXPECTED', why: 'the function threw, as asked' };
  if (route === 'sleepy' && status === 504 && intent === 'long') return { label: 'EXPECTED', why: `slept ${SLEEPY_LONG_MS} ms past timeout_ms ${SLEEPY_TIMEOUT_MS}` };
  if (route === 'sleepy' && status === 504 && /became free/.test(r.message ?? '')) return { label: 'EXPECTED', why: 'no instance became free within timeout_ms (instances replaced after timeouts)' };
  if (route === 'limited' && status === 429 && code === 'RATE_LIMITED') return { label: 'EXPECTED', why: 'over rate_limit {rps: 5, burst: 10}' };
  if (route === 'private' && status === 401 && ((intent === 'wrong key' && code === 'API_KEY_INVALID') || (intent === 'no key' && code === 'API_KEY_MISSING'))) {
    return { label: 'EXPECTED', why: `sent with ${intent === 'no key' ? 'no key' : 'a wrong key'}` };
  }
  if (route === 'tmp' && (status === 404 || status === 405) && (!tmpPresentAt(r.t0) || tmpChangedAround)) {
    return { label: 'EXPECTED', why: tmpChangedAround ? 'the route was inserted/deleted around the call' : 'the route was deleted' };
  }
  const afterKill = ((status === 502 && (code === 'WORKER_DIED' || code === 'FUNCTION_CRASHED')) || (status === 503 && (code === 'NO_WORKER_AVAILABLE' || code === 'FUNCTION_AT_CAPACITY')));
  if (afterKill) {
    const k = kills.find((k) => r.t1 >= k.t && r.t0 <= k.t + opts.killWindow * 1000);
    if (k) return { label: 'EXPECTED', why: `in flight within ${opts.killWindow} s after the kill of ${k.worker} at t=${(k.t / 1000).toFixed(1)} s`, kill: k };
  }
  return { label: 'UNEXPLAINED', why: '' };
}

/** For a 2xx: undefined when the answer is right, else what is wrong with it. */
function wrongAnswer(c, r) {
  if (c.route === 'flaky' && c.intent === 'throw') return 'asked to throw, answered 2xx';
  if (c.route === 'sleepy' && c.intent === 'long') return `slept ${SLEEPY_LONG_MS} ms with timeout_ms ${SLEEPY_TIMEOUT_MS}, answered 2xx`;
  if (c.route === 'private' && c.intent !== 'key') return `sent with ${c.intent}, answered 2xx`;
  if (c.route === 'private' && r.body === 'LEAK') return 'the function saw the API key header';
  if (c.expectJson) {
    try {
      const got = JSON.parse(r.body);
      if (JSON.stringify(got) !== JSON.stringify(c.expectJson)) return `body ${JSON.stringify(r.body.slice(0, 80))}`;
    } catch { return `body not JSON: ${JSON.stringify(r.body.slice(0, 80))}`; }
    return undefined;
  }
  if (r.body !== c.expect) return `body ${JSON.stringify(r.body.slice(0, 80))}, expected ${JSON.stringify(c.expect.slice(0, 40))}`;
  return undefined;
}

const stats = {
  issued: 0, answered: 0, ok2xx: 0, inFlight: 0, maxInFlight: 0, lags: [],
  byRoute: new Map(), // route -> { calls, ok, non2xx, lost, lat: [] }
  groups: new Map(), // label|status|code|route(intent) -> { ..., count, firstT, lastT, why:Set }
  lost: [], unexplained: [],
};

function routeLabel(c) {
  return `${c.method} ${ROUTE_PATH[c.route]}${c.intent ? ` (${c.intent})` : ''}`;
}

function record(c, t0, t1, r) {
  stats.inFlight--;
  const rs = stats.byRoute.get(c.route) ?? { calls: 0, ok: 0, non2xx: 0, lost: 0, lat: [] };
  stats.byRoute.set(c.route, rs);
  rs.calls++;
  const base = { seq: c.seq, t0, t1, route: c.route, intent: c.intent, requestId: `soak-${c.seq}`, method: c.method, path: c.path };
  if (r.error !== undefined) {
    rs.lost++;
    stats.lost.push({ ...base, error: r.error, lastKill: lastBefore(kills, t1), lastChurn: lastBefore(churn.events, t1) });
    return;
  }
  stats.answered++;
  const call = { ...base, status: r.status, worker: r.worker };
  let bad = false;
  if (r.status >= 200 && r.status < 300) {
    rs.lat.push(t1 - t0);
    call.wrong = wrongAnswer(c, r);
    // A deleted route still served is judged in classify (it needs the churn timeline).
    if (c.route === 'tmp' && !tmpPresentAt(t0)) bad = true;
    if (call.wrong) bad = true;
    if (!bad) { stats.ok2xx++; rs.ok++; return; }
  } else {
    rs.non2xx++;
    try {
      const j = JSON.parse(r.body);
      call.code = typeof j.code === 'string' ? j.code : '(no code field)';
      call.message = typeof j.message === 'string' ? j.message : undefined;
    } catch { call.code = '(body not JSON)'; call.message = r.body.slice(0, 200); }
  }
  call.pendingClassify = true;
  pendingCalls.push(call);
}

// Non-2xx (and suspicious 2xx) calls are labelled at the end: a kill or a route change may come
// after the call started and still explain it.
const pendingCalls = [];

function classifyAll() {
  for (const call of pendingCalls) {
    const { label, why, kill } = classify(call);
    if (kill) {
      kill.hits = (kill.hits ?? 0) + 1;
      kill.lastHitAfterMs = Math.max(kill.lastHitAfterMs ?? 0, call.t1 - kill.t);
    }
    if (call.status >= 200 && call.status < 300 && label === 'UNEXPLAINED' && !why) { stats.ok2xx++; stats.byRoute.get(call.route).ok++; continue; }
    const codeKey = call.status >= 200 && call.status < 300 ? 'wrong answer' : call.code;
    const route = `${call.method} ${ROUTE_PATH[call.route]}${call.intent ? ` (${call.intent})` : ''}`;
    const key = `${label}|${call.status}|${codeKey}|${route}`;
    const g = stats.groups.get(key) ?? { label, status: call.status, code: codeKey, route, count: 0, firstT: call.t1, lastT: call.t1, why: new Map() };
    stats.groups.set(key, g);
    g.count++;
    g.firstT = Math.min(g.firstT, call.t1);
    g.lastT = Math.max(g.lastT, call.t1);
    const w = why || call.message || '';
    const short = w.replace(/t=[\d.]+ s/, 't=… s').replace(/w\d+ at/, 'a worker at').slice(0, 140);
    g.why.set(short, (g.why.get(short) ?? 0) + 1);
    if (label === 'UNEXPLAINED') {
      stats.unexplained.push({ ...call, why: w, lastKill: lastBefore(kills, call.t1), lastChurn: lastBefore(churn.events, call.t1) });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling

const samples = [];

async function adminGet(p, timeoutMs = 5000) {
  const res = await fetch(`http://${HOST}:${gw.admin}${p}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (p === '/metrics') return res.text();
  return res.json();
}

function parseMetrics(text) {
  const sum = (name) => {
    let total = 0;
    let found = false;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.eE+-]+)$`, 'gm'))) { total += Number(m[1]); found = true; }
    return found ? total : undefined;
  };
  const errors = {};
  for (const m of text.matchAll(/^faas_errors_total\{code="([^"]+)"\} ([\d.eE+-]+)$/gm)) errors[m[1]] = Number(m[2]);
  return {
    requests: sum('faas_requests_total'), coldStarts: sum('faas_cold_starts_total'), restarts: sum('faas_worker_restarts'),
    buckets: sum('faas_rate_limit_buckets'), datagramsMissed: sum('faas_datagrams_missed_total'), configErrors: sum('faas_config_errors'), errors,
    heapUsed: sum('nodejs_heap_size_used_bytes'), external: sum('nodejs_external_memory_bytes'),
  };
}

async function sampleOnce() {
  const t = tNow();
  const tree = processTree(gw.pid);
  remember(tree);
  const s = { t, gatewayKiB: rssKiB(gw.pid), workers: [], sandboxes: 0, sandboxKiB: 0, inFlight: stats.inFlight, issued: stats.issued };
  const workerPids = new Set();
  try {
    const ws = await adminGet('/workers');
    for (const w of ws) {
      if (typeof w.pid === 'number') workerPids.add(w.pid);
      s.workers.push({ id: w.id, pid: w.pid, kib: typeof w.pid === 'number' ? rssKiB(w.pid) : undefined, restarts: w.restarts, connected: w.connected });
    }
  } catch (err) { s.workersError = err.message; }
  for (const p of tree) {
    if (p.pid === gw.pid || workerPids.has(p.pid)) continue;
    const k = rssKiB(p.pid);
    if (k === undefined) continue;
    s.sandboxes++;
    s.sandboxKiB += k;
  }
  try { s.metrics = parseMetrics(await adminGet('/metrics')); } catch (err) { s.metricsError = err.message; }
  samples.push(s);
  const mib = (k) => (k === undefined ? '?' : (k / 1024).toFixed(1));
  say(`t=${(t / 1000).toFixed(0).padStart(4)} s  calls ${stats.issued}  in flight ${stats.inFlight}  non-2xx ${pendingCalls.length}  lost ${stats.lost.length}  ` +
    `RSS gateway ${mib(s.gatewayKiB)} MiB, workers ${s.workers.map((w) => `${w.id} ${mib(w.kib)}`).join(', ')}, ${s.sandboxes} other processes ${mib(s.sandboxKiB)} MiB`);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Chaos: worker kills

async function killOnce(rng) {
  const t = tNow();
  let ws;
  try { ws = await adminGet('/workers'); } catch (err) { say(`kill skipped: GET /workers failed: ${err.message}`); return; }
  // Only a connected worker that is our gateway's child (a pid just reused is not ours to kill).
  const candidates = ws.filter((w) => typeof w.pid === 'number' && w.connected && procStat(w.pid)?.ppid === gw.pid);
  if (candidates.length === 0) { say(`kill skipped at t=${(t / 1000).toFixed(1)} s: no connected worker of ours (${ws.map((w) => `${w.id}:${w.pid ?? '-'}`).join(' ')})`); return; }
  const w = candidates[Math.floor(rng() * candidates.length)];
  const tree = processTree(w.pid);
  remember(tree);
  const descendants = tree.filter((p) => p.pid !== w.pid).map((p) => ({ pid: p.pid, startTime: p.startTime, comm: p.comm }));
  const k = { t: tNow(), at: new Date().toISOString(), worker: w.id, pid: w.pid, descendants: descendants.length, survivors: [] };
  try { process.kill(w.pid, 'SIGKILL'); } catch (err) { say(`kill of ${w.id} (pid ${w.pid}) failed: ${err.message}`); return; }
  kills.push(k);
  say(`t=${(k.t / 1000).toFixed(1)} s: SIGKILL ${w.id} (pid ${w.pid}, ${descendants.length} descendants)`);
  // Its sandboxes must die with it: look 5 s later.
  setTimeout(() => {
    k.survivors = descendants.filter((p) => alive(p.pid, p.startTime)).map((p) => ({ pid: p.pid, comm: p.comm, cmdline: cmdline(p.pid).slice(0, 160) }));
    if (k.survivors.length) say(`${k.survivors.length} process(es) of killed worker ${w.id} still alive 5 s later: ${k.survivors.map((p) => `${p.comm}:${p.pid}`).join(', ')}`);
  }, 5000).unref();
}

// ---------------------------------------------------------------------------------------------
// The run

function machine() {
  let cpu = 'unknown CPU';
  try { cpu = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu; } catch {}
  return {
    nproc: os.availableParallelism(), model: cpu, node: process.version, kernel: os.release(), memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadavg: os.loadavg().map((l) => +l.toFixed(2)),
  };
}

function newestMtime(dir, ext, depth = 0) {
  let newest = 0;
  if (depth > 8 || !fs.existsSync(dir)) return newest;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext, depth + 1));
    else if (e.name.endsWith(ext)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Waits until each route answers as it should (the first sync has happened, the key is known). */
async function waitForRoutes() {
  const deadline = performance.now() + 60_000;
  const probes = [
    { route: 'noop', want: 200 }, { route: 'echo', want: 200 }, { route: 'py', want: 200 }, { route: 'flaky', want: 200 },
    { route: 'sleepy', want: 200 }, { route: 'limited', want: 200 }, { route: 'private', want: 200 }, { route: 'tmp', want: 404 },
  ];
  let seq = -1;
  for (const p of probes) {
    let last;
    for (;;) {
      if (!gatewayAlive()) throw new Error(`the gateway exited while routes were loading:\n${stderrTail.join('\n')}`);
      const rng = seeded(1);
      let c;
      do { c = planCall(seq--, rng); } while (c.route !== p.route || (c.intent && !['ok', 'short', 'key'].includes(c.intent)));
      const r = await send(c, 30_000);
      if (r.status === p.want && (p.want !== 200 || wrongAnswer(c, r) === undefined)) break;
      last = r.error ?? `${r.status} ${r.body?.slice(0, 200)}`;
      if (performance.now() > deadline) throw new Error(`${c.method} ${c.path} did not answer ${p.want} within 60 s (last: ${last})\n${stderrTail.slice(-30).join('\n')}`);
      await sleep(200);
    }
  }
}

let gatewayDiedAt;

async function main() {
  const cli = path.join(root, 'dist/src/cli/main.js');
  if (!fs.existsSync(cli)) throw new Error('dist/src/cli/main.js is missing: run npm run build first');
  if (newestMtime(path.join(root, 'src'), '.ts') > fs.statSync(cli).mtimeMs + 1000 || newestMtime(path.join(root, 'workers'), '.ts') > fs.statSync(cli).mtimeMs + 1000) {
    say('warning: src/ or workers/ has changes newer than dist/src/cli/main.js; dist/ may be stale (npm run build)');
  }
  const info = machine();
  const started = new Date();
  say(`${info.nproc} CPUs (${info.model}), Node ${info.node}; ${opts.duration} s at ${opts.rate} calls/s, ${opts.workers} workers, seed ${opts.seed}`);

  await startGateway();
  say(`gateway pid ${gw.pid}: http ${gw.http}, admin ${gw.admin}, dir ${tmpDir}`);
  remember(processTree(gw.pid));
  apiKey = createKey();
  insertRoutes();
  agents = Array.from({ length: opts.clients }, () => new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 }));
  await waitForRoutes();
  say('every route answers; starting the load');

  const rngArrivals = seeded(opts.seed);
  const rngMix = seeded(opts.seed + 1);
  const rngKill = seeded(opts.seed + 2);
  const rngChurn = seeded(opts.seed + 3);
  const durationMs = opts.duration * 1000;
  const callTimeoutMs = opts.callTimeout * 1000;
  const inflight = new Set();
  let nextArrival = -Math.log(1 - rngArrivals()) * 1000 / opts.rate;
  let nextKill = opts.killEvery > 0 ? opts.killEvery * 1000 : Infinity;
  let nextChurn = opts.churnEvery > 0 ? opts.churnEvery * 1000 : Infinity;
  let nextSample = 0;
  let seq = 0;
  let sampling;
  loadStart = performance.now();
  gw.exited.then(() => { if (gatewayDiedAt === undefined && !stopping) { gatewayDiedAt = tNow(); say(`the gateway exited at t=${(gatewayDiedAt / 1000).toFixed(1)} s (${gw.exit.signal ?? `code ${gw.exit.code}`}); ending the load`); } });

  while (!stopLoad && gatewayAlive()) {
    const now = tNow();
    if (now >= durationMs) break;
    while (nextArrival <= now) {
      const c = planCall(seq++, rngMix);
      const due = nextArrival;
      stats.issued++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      stats.lags.push(now - due);
      const p = send(c, callTimeoutMs).then((r) => { record(c, due, tNow(), r); inflight.delete(p); });
      inflight.add(p);
      nextArrival += -Math.log(1 - rngArrivals()) * 1000 / opts.rate;
    }
    if (now >= nextKill) { nextKill += opts.killEvery * 1000; void killOnce(rngKill); }
    if (now >= nextChurn) { nextChurn += opts.churnEvery * 1000; churnOnce(rngChurn, now); }
    if (now >= nextSample && !sampling) {
      nextSample += opts.sampleEvery * 1000;
      sampling = sampleOnce().catch((err) => say(`sample failed: ${err.message}`)).finally(() => { sampling = undefined; });
    }
    const wait = Math.min(nextArrival, nextKill, nextChurn, nextSample, durationMs) - tNow();
    await sleep(Math.max(1, Math.min(wait, 20)));
  }
  const loadEnded = tNow();
  say(`load ended at t=${(loadEnded / 1000).toFixed(1)} s; waiting for ${inflight.size} call(s) in flight (at most ${opts.callTimeout} s)`);
  await Promise.all([...inflight]);
  await sampling;
  if (gatewayAlive()) await sampleOnce().catch((err) => say(`final sample failed: ${err.message}`));
  const finalWorkers = gatewayAlive() ? await adminGet('/workers').catch(() => undefined) : undefined;
  const finalRoutes = gatewayAlive() ? await adminGet('/routes').catch(() => undefined) : undefined;
  for (const a of agents) a.destroy();
  // Let the 5-second survivor checks of the last kills run.
  const lastKill = kills[kills.length - 1];
  if (lastKill && tNow() - lastKill.t < 5500) await sleep(5500 - (tNow() - lastKill.t));

  const gatewayExitBeforeStop = gw.exit ? { ...gw.exit } : undefined;
  const stopResult = await stopGateway();
  classifyAll();
  const logLines = readLog();
  if (opts.log) {
    try { fs.copyFileSync(gw.logFile, opts.log); say(`gateway log kept in ${opts.log}`); } catch (err) { say(`could not keep the log: ${err.message}`); }
  }
  const finished = new Date();
  const report = buildReport({ info, started, finished, loadEnded, stopResult, gatewayExitBeforeStop, finalWorkers, finalRoutes, logLines });
  removeTmpDir();
  process.stdout.write(report.markdown);
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(report.json, null, 2) + '\n');
    say(`wrote ${opts.json}`);
  }
  return report.ok ? 0 : 1;
}

function readLog() {
  try {
    return fs.readFileSync(gw.logFile, 'utf8').split('\n').filter(Boolean).map((line) => {
      try { const j = JSON.parse(line); return { line, j, ms: Date.parse(j.time) }; } catch { return { line, j: undefined, ms: NaN }; }
    });
  } catch { return []; }
}

// ---------------------------------------------------------------------------------------------
// The report

const q = (xs, p) => {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const maxOf = (xs) => xs.reduce((a, x) => (x > a ? x : a), xs.length ? -Infinity : NaN);
const fmtMs = (ms) => (Number.isFinite(ms) ? (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)) : '–');
const fmtT = (ms) => (ms / 1000).toFixed(1);
const mibOf = (kib) => (kib === undefined ? undefined : kib / 1024);
const fmtMiB = (kib) => (kib === undefined ? '?' : (kib / 1024).toFixed(1));

function buildReport({ info, started, finished, loadEnded, stopResult, gatewayExitBeforeStop, finalWorkers, finalRoutes, logLines }) {
  const L = [];
  const iso = (d) => d.toISOString().replace(/\.\d+Z$/, 'Z');
  const groups = [...stats.groups.values()].sort((a, b) => (a.label === b.label ? b.count - a.count : a.label === 'UNEXPLAINED' ? -1 : 1));
  const unexplainedCount = stats.unexplained.length;
  const expectedCount = groups.filter((g) => g.label === 'EXPECTED').reduce((a, g) => a + g.count, 0);
  const wrongCount = groups.filter((g) => g.code === 'wrong answer').reduce((a, g) => a + g.count, 0);
  const lostCount = stats.lost.length;

  L.push('');
  L.push(`## Soak: ${fmtT(loadEnded)} s of load on the gateway, ${kills.length} worker kill(s), ${churn.events.length} route change(s)`);
  L.push('');
  L.push(`${iso(started)}: ${info.nproc} CPUs (${info.model}), ${info.memGiB} GiB, Node ${info.node}, Linux ${info.kernel}, load average at start ${info.loadavg.join(' ')}`);
  L.push(`command: \`${command}\``);
  L.push(`gateway: \`node ${gw.args.map(shellQuote).join(' ').replace(tmpDir, 'DIR').replaceAll(tmpDir, 'DIR')}\` (DIR a fresh temp dir), pid ${gw.pid}; ` +
    `${opts.rate} calls/s open loop (Poisson, seed ${opts.seed}) over ${opts.clients} keep-alive clients; SIGKILL a worker every ${opts.killEvery || '–'} s, an SQL change every ${opts.churnEvery || '–'} s, a sample every ${opts.sampleEvery} s`);
  if (signalled !== undefined) L.push(`**stopped early by a signal** at t=${fmtT(loadEnded)} s of ${opts.duration} s`);
  if (gatewayDiedAt !== undefined || gatewayExitBeforeStop) {
    const e = gatewayExitBeforeStop ?? gw.exit;
    L.push(`**the gateway exited by itself** at t=${fmtT(gatewayDiedAt ?? loadEnded)} s (${e?.signal ?? `code ${e?.code}`}); its last log lines:`);
    L.push('');
    L.push('```');
    L.push(...stderrTail.slice(-20).map((l) => l.slice(0, 400)));
    L.push('```');
  }
  L.push('');

  const lagP99 = q(stats.lags, 0.99);
  const lagMax = maxOf(stats.lags);
  L.push(`- calls: **${stats.issued}** (${(stats.issued / Math.max(1, loadEnded / 1000)).toFixed(1)}/s), answered ${stats.answered}, right 2xx ${stats.ok2xx}, ` +
    `non-2xx or wrong answer ${expectedCount + unexplainedCount} (expected ${expectedCount}, **unexplained ${unexplainedCount}**${wrongCount ? `, of which wrong 2xx answers ${wrongCount}` : ''}), **lost ${lostCount}** (no HTTP answer)`);
  L.push(`- client: at most ${stats.maxInFlight} calls in flight; calls sent late by p99 ${fmtMs(lagP99)} ms, at most ${fmtMs(lagMax)} ms (the open-loop schedule held if these are small)`);
  const restartsSeen = finalWorkers ? finalWorkers.reduce((a, w) => a + (w.restarts ?? 0), 0) : undefined;
  L.push(`- worker kills: ${kills.length}${kills.length ? ` at t = ${kills.map((k) => `${fmtT(k.t)} s (${k.worker}, ${k.descendants} processes under it; ${k.hits ?? 0} call(s) answered 502/503 for it${k.hits ? `, the last ${(k.lastHitAfterMs / 1000).toFixed(2)} s after` : ''})`).join(', ')}` : ''}; restarts the gateway counts at the end: ${restartsSeen ?? '?'}` +
    `${finalWorkers ? `; workers at the end: ${finalWorkers.map((w) => `${w.id} ${w.connected && w.available ? 'up' : w.connected ? 'connected, not available' : 'down'}`).join(', ')}` : ''}`);
  const byKind = {};
  for (const e of churn.events) byKind[e.kind] = (byKind[e.kind] ?? 0) + 1;
  const failedChurn = churn.events.filter((e) => e.error);
  L.push(`- route changes: ${churn.events.length} (${Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})${failedChurn.length ? `, **${failedChurn.length} failed**: ${failedChurn.slice(0, 3).map((e) => e.error).join('; ')}` : ''}`);
  if (finalRoutes?.routes) {
    const notOk = finalRoutes.routes.filter((r) => r.state !== 'ok');
    L.push(`- routes at the end (GET /routes): ${finalRoutes.routes.length}, ${notOk.length ? `not ok: ${notOk.map((r) => `${r.key} ${r.state} ${r.lastError ?? ''}`).join('; ')}` : 'all ok'}`);
  }
  const survivors = kills.flatMap((k) => k.survivors.map((p) => ({ ...p, worker: k.worker })));
  L.push(`- processes of a killed worker still alive 5 s after its kill: ${survivors.length}${survivors.length ? ` (${survivors.slice(0, 5).map((p) => `${p.worker}: ${p.comm} ${p.pid} \`${p.cmdline}\``).join('; ')})` : ''}`);
  L.push(`- at the end: the gateway stopped on SIGTERM in ${stopResult.termSeconds === undefined ? '– (it was gone)' : `${stopResult.termSeconds.toFixed(1)} s`}${stopResult.sigkilledGateway ? ' (**needed SIGKILL**)' : ''}; ` +
    `processes of its tree alive 3 s later: ${stopResult.leftovers.length}${stopResult.leftovers.length ? ` (killed: ${stopResult.leftovers.slice(0, 5).map((p) => `${p.comm} ${p.pid}`).join(', ')})` : ''}`);
  L.push('');

  // Per route.
  L.push('### Calls by route');
  L.push('');
  L.push('| route | calls | right 2xx | non-2xx / wrong | lost | 2xx p50 ms | 2xx p99 ms | 2xx max ms |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const [name] of MIX) {
    const rs = stats.byRoute.get(name);
    if (!rs) continue;
    L.push(`| ${ROUTES[name].key.replace(':', ' ')} | ${rs.calls} | ${rs.ok} | ${rs.calls - rs.ok - rs.lost} | ${rs.lost} | ${fmtMs(q(rs.lat, 0.5))} | ${fmtMs(q(rs.lat, 0.99))} | ${fmtMs(maxOf(rs.lat))} |`);
  }
  L.push('');
  L.push('Latency is from when the call was due to the end of its answer.');
  L.push('');

  // Non-2xx.
  L.push('### Every non-2xx answer (and wrong 2xx), by status, code and route');
  L.push('');
  if (groups.length === 0) L.push('None.');
  else {
    L.push('| label | status | code | route (what the call asked) | count | first / last t s | why |');
    L.push('|---|---|---|---|---|---|---|');
    for (const g of groups) {
      const whys = [...g.why.entries()].sort((a, b) => b[1] - a[1]);
      const why = whys.slice(0, 2).map(([w, n]) => (whys.length > 1 ? `${w} (${n})` : w)).join('; ') + (whys.length > 2 ? `; +${whys.length - 2} more` : '');
      L.push(`| ${g.label === 'UNEXPLAINED' ? '**UNEXPLAINED**' : 'EXPECTED'} | ${g.status} | ${g.code} | ${g.route} | ${g.count} | ${fmtT(g.firstT)} / ${fmtT(g.lastT)} | ${why.replace(/\|/g, '\\|')} |`);
    }
  }
  L.push('');

  // Lost.
  L.push(`### Lost calls (no HTTP answer): ${lostCount}`);
  L.push('');
  if (lostCount) {
    L.push('| t s (sent → gave up) | call | request id | error | last kill before | last SQL change before |');
    L.push('|---|---|---|---|---|---|');
    for (const c of stats.lost.slice(0, 50)) {
      L.push(`| ${fmtT(c.t0)} → ${fmtT(c.t1)} | ${c.method} ${c.path} | ${c.requestId} | ${c.error} | ${c.lastKill ? `${c.lastKill.worker} at ${fmtT(c.lastKill.t)}` : '–'} | ${c.lastChurn ? `${c.lastChurn.kind} ${c.lastChurn.key} at ${fmtT(c.lastChurn.t)}` : '–'} |`);
    }
    if (lostCount > 50) L.push(`| … ${lostCount - 50} more | | | | | |`);
    L.push('');
  }

  // Unexplained, one by one, with the gateway's log around them.
  if (unexplainedCount) {
    L.push(`### Unexplained answers, first ${Math.min(20, unexplainedCount)} of ${unexplainedCount}`);
    L.push('');
    L.push('| t s (sent → answered) | call | request id | status | code | worker | message | last kill before | last SQL change before |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    for (const c of stats.unexplained.slice(0, 20)) {
      L.push(`| ${fmtT(c.t0)} → ${fmtT(c.t1)} | ${c.method} ${c.path} | ${c.requestId} | ${c.status} | ${c.code ?? '–'} | ${c.worker ?? '–'} | ${String(c.message ?? c.why ?? '').slice(0, 160).replace(/\|/g, '\\|')} | ` +
        `${c.lastKill ? `${c.lastKill.worker} at ${fmtT(c.lastKill.t)}` : '–'} | ${c.lastChurn ? `${c.lastChurn.kind} ${c.lastChurn.key} ${c.lastChurn.detail ?? ''} at ${fmtT(c.lastChurn.t)}` : '–'} |`);
    }
    L.push('');
  }
  const excerpt = logExcerpt(logLines, [...stats.unexplained, ...stats.lost]);
  if (excerpt.length) {
    L.push('Gateway log (stderr) lines naming those request ids, and its warn/error lines from 2 s before to 1 s after the first 5:');
    L.push('');
    L.push('```');
    L.push(...excerpt);
    L.push('```');
    L.push('');
  }

  // Memory.
  L.push('### Memory (VmRSS)');
  L.push('');
  L.push('| t s | gateway MiB | gateway V8 heap used / external MiB | workers MiB | other processes of its tree (sandboxes, zygotes): count, summed RSS MiB (shared pages counted in each) | gateway cold starts so far |');
  L.push('|---|---|---|---|---|---|');
  const stride = Math.max(1, Math.ceil(samples.length / 20));
  samples.forEach((s, i) => {
    if (i % stride !== 0 && i !== samples.length - 1) return;
    const heap = (bytes) => (bytes === undefined ? '?' : (bytes / 2 ** 20).toFixed(1));
    L.push(`| ${fmtT(s.t)} | ${fmtMiB(s.gatewayKiB)} | ${heap(s.metrics?.heapUsed)} / ${heap(s.metrics?.external)} | ${s.workers.map((w) => `${w.id} ${fmtMiB(w.kib)}`).join(', ') || '?'} | ${s.sandboxes}, ${fmtMiB(s.sandboxKiB)} | ${s.metrics?.coldStarts ?? '?'} |`);
  });
  if (stride > 1) L.push(`| (every ${stride}th of ${samples.length} samples, and the last) | | | | | |`);
  L.push('');
  const warmupMs = (opts.duration < 2 * opts.warmup ? opts.duration / 2 : opts.warmup) * 1000;
  const withRss = samples.filter((s) => s.gatewayKiB !== undefined);
  const first = withRss.find((s) => s.t >= warmupMs);
  const last = withRss[withRss.length - 1];
  let growthPct;
  let heapGrowthMiB;
  let memoryLine;
  if (first && last && last !== first) {
    const dMiB = mibOf(last.gatewayKiB) - mibOf(first.gatewayKiB);
    growthPct = (100 * (last.gatewayKiB - first.gatewayKiB)) / first.gatewayKiB;
    const whole = (s) => s.workers.length === opts.workers && s.workers.every((w) => w.kib !== undefined);
    const wSum = (s) => s.workers.reduce((a, w) => a + w.kib, 0);
    const wFirst = withRss.find((s) => s.t >= warmupMs && whole(s));
    const wLast = [...withRss].reverse().find(whole);
    memoryLine = `Memory after warm-up (gateway RSS, first sample at or after ${(warmupMs / 1000).toFixed(0)} s${warmupMs !== opts.warmup * 1000 ? ', half of this short run' : ''} against the last): ` +
      `${fmtMiB(first.gatewayKiB)} MiB at t=${fmtT(first.t)} s → ${fmtMiB(last.gatewayKiB)} MiB at t=${fmtT(last.t)} s: **${dMiB >= 0 ? '+' : ''}${dMiB.toFixed(1)} MiB (${growthPct >= 0 ? '+' : ''}${growthPct.toFixed(1)} %)**. ` +
      (wFirst && wLast && wFirst !== wLast ? `Workers together: ${fmtMiB(wSum(wFirst))} MiB at t=${fmtT(wFirst.t)} s → ${fmtMiB(wSum(wLast))} MiB at t=${fmtT(wLast.t)} s (the kills restart them, so theirs says little).` : '');
  } else {
    memoryLine = `Memory after warm-up: not enough samples after ${(warmupMs / 1000).toFixed(0)} s to compare (${withRss.length} sample(s) in all).`;
  }
  L.push(memoryLine);
  // Heap in use swings with each GC; the lowest sample of a stretch is its floor after collection.
  const heapSamples = samples.filter((s) => s.t >= warmupMs && s.metrics?.heapUsed !== undefined);
  if (heapSamples.length >= 6) {
    const third = Math.floor(heapSamples.length / 3);
    const floor = (xs) => Math.min(...xs.map((s) => s.metrics.heapUsed)) / 2 ** 20;
    const early = floor(heapSamples.slice(0, third));
    const late = floor(heapSamples.slice(-third));
    heapGrowthMiB = late - early;
    L.push('');
    L.push(`Gateway V8 heap in use, lowest sample (its floor after collections) of the first and of the last third after warm-up: ` +
      `${early.toFixed(1)} → ${late.toFixed(1)} MiB (**${heapGrowthMiB >= 0 ? '+' : ''}${heapGrowthMiB.toFixed(1)} MiB**).`);
  }
  L.push('');

  // The gateway's own counts, beside ours.
  const m0 = samples.find((s) => s.metrics)?.metrics;
  const m1 = [...samples].reverse().find((s) => s.metrics)?.metrics;
  if (m1) {
    const ours = {};
    for (const g of groups) if (g.code !== 'wrong answer') ours[g.code] = (ours[g.code] ?? 0) + g.count;
    const codes = [...new Set([...Object.keys(m1.errors), ...Object.keys(ours)])].sort();
    L.push(`The gateway's /metrics at the last sample: requests ${m1.requests ?? '?'} (${m0?.requests ?? '?'} at the first, the warm-up's included), cold starts ${m1.coldStarts ?? '?'}, worker restarts ${m1.restarts ?? '?'}, ` +
      `rate-limit buckets ${m1.buckets ?? '?'}, load reports missed ${m1.datagramsMissed ?? '?'}, config errors ${m1.configErrors ?? '?'}. Errors by code, the gateway's count (since start) / ours (load only):` +
      ` ${codes.map((c) => `${c} ${m1.errors[c] ?? 0} / ${ours[c] ?? 0}`).join(', ') || 'none'}.`);
    L.push('');
  }

  const verdictPct = growthPct === undefined ? 'n/a' : `${growthPct >= 0 ? '+' : ''}${growthPct.toFixed(1)} %`;
  const ok = unexplainedCount === 0 && lostCount === 0 && gatewayDiedAt === undefined && !gatewayExitBeforeStop;
  L.push(`finished ${iso(finished)} (${((finished - started) / 1000).toFixed(0)} s in all)`);
  L.push('');
  const heapVerdict = heapGrowthMiB === undefined ? '' : `, heap floor ${heapGrowthMiB >= 0 ? '+' : ''}${heapGrowthMiB.toFixed(1)} MiB`;
  L.push(`**Verdict: unexplained errors ${unexplainedCount}, lost calls ${lostCount}, memory growth ${verdictPct} (RSS)${heapVerdict}**${gatewayDiedAt !== undefined || gatewayExitBeforeStop ? ' (and the gateway exited by itself)' : ''}`);
  L.push('');

  const json = {
    started: started.toISOString(), finished: finished.toISOString(), command, machine: info, options: opts,
    gateway: { pid: gw.pid, args: gw.args, exitedBeforeStop: gatewayExitBeforeStop ?? null, stop: stopResult },
    totals: { issued: stats.issued, answered: stats.answered, right2xx: stats.ok2xx, expected: expectedCount, unexplained: unexplainedCount, wrong2xx: wrongCount, lost: lostCount, maxInFlight: stats.maxInFlight, lagP99Ms: lagP99, lagMaxMs: lagMax },
    byRoute: Object.fromEntries([...stats.byRoute].map(([k, v]) => [k, { calls: v.calls, ok: v.ok, lost: v.lost, p50Ms: q(v.lat, 0.5), p99Ms: q(v.lat, 0.99) }])),
    groups: groups.map((g) => ({ ...g, why: Object.fromEntries(g.why) })),
    lost: stats.lost, unexplained: stats.unexplained, kills, changes: churn.events, samples,
    memory: first && last ? { warmupS: warmupMs / 1000, fromT: first.t, fromKiB: first.gatewayKiB, toT: last.t, toKiB: last.gatewayKiB, growthPct } : null,
    verdict: { unexplained: unexplainedCount, lost: lostCount, memoryGrowthPct: growthPct ?? null, ok },
  };
  return { markdown: L.join('\n'), json, ok };
}

/** The gateway's log lines that name a request id of `calls`, and its warn/error lines near the first few. */
function logExcerpt(lines, calls) {
  if (!calls.length || !lines.length) return [];
  const ids = new Set(calls.map((c) => c.requestId));
  const out = new Set();
  for (const l of lines) {
    if (out.size >= 40) break;
    const id = l.j?.requestId;
    if (id && ids.has(id)) out.add(l.line);
  }
  // Map the load's clock onto wall time: loadStart is performance.now(); log lines carry ISO times.
  const wallAtLoadStart = Date.now() - (performance.now() - loadStart);
  for (const c of calls.slice(0, 5)) {
    const from = wallAtLoadStart + c.t0 - 2000;
    const to = wallAtLoadStart + c.t1 + 1000;
    for (const l of lines) {
      if (out.size >= 80) break;
      if (l.ms >= from && l.ms <= to && l.j && (l.j.level === 'warn' || l.j.level === 'error')) out.add(l.line);
    }
  }
  return [...out].sort().map((l) => (l.length > 600 ? `${l.slice(0, 600)}…` : l));
}

// ---------------------------------------------------------------------------------------------

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  say(`${err?.stack ?? err}`);
  exitCode = 1;
} finally {
  await stopGateway();
  removeTmpDir();
}
process.exit(signalled ?? exitCode);
