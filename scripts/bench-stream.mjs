#!/usr/bin/env node
// Streamed answers (a Workers function returning `new Response(readableStream)`), through the
// whole path (client → gateway → worker → sandboxed node function → back), beside a floor
// measured in the same run: bare uWebSockets.js running the *same* function module in-process
// and writing its stream with uWS's own backpressure (write → onWritable). Runs alternate.
//
//   npm run build && node scripts/bench-stream.mjs [--runs 5] [--events 25] [--json FILE]
//
// 1. SSE latency (GET /sse): the function enqueues an SSE event every 200 ms, each carrying
//    `performance.timeOrigin + performance.now()` at the moment it was enqueued. The client (a
//    raw socket, so the time is when the bytes arrive) takes the same clock at each event's
//    arrival: delay = arrival − sent, per event and for the first event of each run (the
//    issue's target: the first event at the client within 50 ms). Same machine, same clock.
// 2. 64 MiB streamed (GET /big): a pull-based stream of 64 KiB chunks, each starting with the
//    time it was produced. Read at full speed (throughput MiB/s, CPU time of each process), then
//    by a slow reader that pauses its socket for 2 s after the first MiB: the chunks' production
//    times say how much the function had produced beyond what the client had read (held in the
//    flow-control window and the socket buffers) and how long it then stood still (≈ 2 s when
//    backpressure works). VmRSS of the gateway, its worker and the sandbox processes (summed) is
//    sampled every 50 ms: growth = max during − before (the target: < 16 MiB for the
//    gateway and the worker). The first 64 MiB after start is a warm-up, reported apart: it is
//    where the processes' heaps grow (README, Benchmarks, Streaming, says why).
//
// Results: Markdown tables on stdout (medians over runs), progress on stderr; --json FILE
// writes the summary and every sample. Exits non-zero if a server fails to serve or bytes go
// missing; a missed target is reported, not fatal. The gateway's log goes to a file in its temp
// dir (its tail printed on failure): a slow reader of its stderr would slow the gateway itself.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { eachFlag, intFlag, listeningPort, median, UsageError } from './lib/bench-helpers.mjs';
import { ChildGroup, cmdline, processTree, procStat } from './lib/processes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const BIG = 64 * MiB;
const PAUSE_AFTER = MiB;
const PAUSE_MS = 2000;
const now = () => performance.timeOrigin + performance.now();
const MS_PER_TICK = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

// The functions: the same source runs in the gateway's sandbox and in the bare baseline.
const FUNCTIONS = {
  sse: `export default { fetch(request) {
  const n = Number(new URL(request.url).searchParams.get('n') ?? 25);
  const enc = new TextEncoder();
  let i = 0, timer;
  return new Response(new ReadableStream({
    start(c) {
      const tick = () => {
        c.enqueue(enc.encode('id: ' + i + '\\ndata: ' + (performance.timeOrigin + performance.now()) + '\\n\\n'));
        if (++i >= n) { clearInterval(timer); c.close(); }
      };
      tick();
      if (i < n) timer = setInterval(tick, 200);
    },
    cancel() { clearInterval(timer); },
  }), { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
} }`,
  big: `export default { fetch(request) {
  const total = Number(new URL(request.url).searchParams.get('bytes') ?? ${BIG});
  let sent = 0;
  return new Response(new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      const chunk = new Uint8Array(Math.min(${CHUNK}, total - sent)).fill(120);
      if (chunk.length >= 8) new DataView(chunk.buffer).setFloat64(0, performance.timeOrigin + performance.now(), true);
      c.enqueue(chunk);
      sent += chunk.length;
    },
  }), { headers: { 'content-type': 'application/octet-stream' } });
} }`,
};

if (process.argv[2] === '--serve-baseline') await serveBaseline();
else {
  const opts = { runs: 5, events: 25, json: undefined };
  let tmpDir;
  const group = new ChildGroup('bench-stream', { graceMs: 5000, cleanup: () => tmpDir && fs.rmSync(tmpDir, { recursive: true, force: true }) });
  const usage = () => 'usage: node scripts/bench-stream.mjs [--runs N] [--events N] [--json FILE]';
  const parse = () => eachFlag(process.argv.slice(2), (flag, value) => {
    if (flag === '--runs') opts.runs = intFlag(flag, value(), 1, 100);
    else if (flag === '--events') opts.events = intFlag(flag, value(), 1, 1000);
    else if (flag === '--json') opts.json = path.resolve(value());
    else throw new UsageError(`unknown option ${flag}`);
  });
  await group.run(parse, usage, async () => {
    if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new Error('dist/src/cli/main.js is missing: run npm run build first');
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-stream-'));
    fs.chmodSync(tmpDir, 0o755);
    const logFile = path.join(tmpDir, 'gateway.log');
    const servers = { bare: await start('bare uWS', [fileURLToPath(import.meta.url), '--serve-baseline'], 'inherit') };
    servers.gateway = await start('gateway', ['dist/src/cli/main.js', 'gateway', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0',
      '--db', path.join(tmpDir, 'faas.db'), '--run-dir', path.join(tmpDir, 'run'), '--workers', '1', '--sync-ms', '100'], fs.openSync(logFile, 'w'));
    const db = new Database(path.join(tmpDir, 'faas.db'));
    const insert = db.prepare('INSERT OR REPLACE INTO functions(k, v) VALUES (?, ?)');
    for (const [name, code] of Object.entries(FUNCTIONS)) insert.run(`GET:/${name}`, JSON.stringify({ runtime: 'node', code }));
    db.close();
    try {
      // Warm-up, not counted but the first 64 MiB's RSS growth: the route, one 64 MiB (JIT), 5 events.
      const out = { sse: {}, big: {} };
      for (const [side, s] of Object.entries(servers)) {
        await warm(s);
        out.big[side] = { first: await bigRun(s, false), fast: [], slow: [] };
        await sseRun(s.port, 5);
      }
      await new Promise((r) => setTimeout(r, 2000)); // the worker starts spare sandboxes for those it gave out: let it
      for (let run = 1; run <= opts.runs; run++) {
        for (const [side, s] of Object.entries(servers)) {
          const sse = (out.sse[side] ??= { first: [], events: [], ttfb: [] });
          const r = await sseRun(s.port, opts.events);
          sse.first.push(r.delays[0]); sse.events.push(...r.delays); sse.ttfb.push(r.ttfb);
          const big = out.big[side];
          big.fast.push(await bigRun(s, false));
          big.slow.push(await bigRun(s, true));
        }
        process.stderr.write(`run ${run}/${opts.runs} done\n`);
      }
      report(out, servers);
    } catch (err) { err.message += `\n--- the gateway's log, last lines ---\n${fs.readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n')}`; throw err; }
    return 0;
  });

  /** Starts a server child; resolves with its pid and port once it prints `listening http=PORT`. */
  async function start(name, args, stderr) {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', stderr] });
    group.track(name, child);
    const port = Number(await listeningPort(child, name));
    return { name, pid: child.pid, port };
  }

  /** Until both routes answer 200 (the gateway applies the rows within a sync period, 404 until then). */
  async function warm(s) {
    for (let i = 0; ; i++) {
      try {
        await sseRun(s.port, 1);
        const r = await get(s.port, `/big?bytes=${CHUNK}`, () => {});
        if (r.bytes === CHUNK) return;
      } catch (err) { // a 404 until the gateway has synced the rows; anything else at once
        if (i >= 100 || / [1235]\d\d /.test(err.message)) throw new Error(`${s.name} did not serve /sse and /big: ${err.message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** One SSE request of n events: each event's delay (arrival − sent, ms), and request sent → first event. */
  async function sseRun(port, n) {
    const delays = [];
    let text = '';
    const r = await get(port, `/sse?n=${n}`, (slice, _offset, t) => {
      text += slice.toString();
      let end;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const sent = Number(/^data: (.+)$/m.exec(text.slice(0, end))?.[1]);
        if (!Number.isFinite(sent)) throw new Error(`an SSE event without a time: ${JSON.stringify(text.slice(0, end))}`);
        delays.push({ t, delay: t - sent });
        text = text.slice(end + 2);
      }
    });
    if (delays.length !== n) throw new Error(`GET /sse?n=${n}: ${delays.length} events arrived`);
    return { delays: delays.map((d) => d.delay), ttfb: delays[0].t - r.t0 };
  }

  /** 64 MiB at full speed or by a slow reader; RSS of the server's processes sampled every 50 ms. */
  async function bigRun(s, slow) {
    const procs = roles(s);
    const rss = Object.fromEntries(Object.entries(procs).map(([role, pids]) => [role, { before: rssMiB(pids), max: 0 }]));
    const sample = () => { for (const [role, pids] of Object.entries(procs)) rss[role].max = Math.max(rss[role].max, rssMiB(pids)); };
    const ticks = () => Object.fromEntries(Object.entries(procs).map(([role, pids]) => [role, pids.reduce((n, pid) => n + (procStat(pid)?.ticks ?? 0), 0)]));
    const ticks0 = ticks();
    const sampler = setInterval(sample, 50);
    const stamps = [];
    const stamp = Buffer.alloc(8);
    let pausedAt, pausedOffset, resumedAt;
    try {
      const r = await get(s.port, '/big', (slice, offset, t, sock) => {
        // Each 64 KiB chunk of the function begins with the time it was produced (8 bytes).
        for (let pos = 0; pos < slice.length;) {
          const rel = (offset + pos) % CHUNK;
          if (rel >= 8) { pos += CHUNK - rel; continue; }
          const take = Math.min(8 - rel, slice.length - pos);
          slice.copy(stamp, rel, pos, pos + take);
          pos += take;
          if (rel + take === 8) stamps.push(stamp.readDoubleLE(0));
        }
        if (slow && pausedAt === undefined && offset + slice.length >= PAUSE_AFTER) {
          sock.pause();
          pausedAt = t;
          pausedOffset = offset + slice.length;
          setTimeout(() => { resumedAt = now(); sock.resume(); }, PAUSE_MS);
        }
      });
      sample();
      const ticks1 = ticks();
      const cpuMs = Object.fromEntries(Object.keys(procs).map((role) => [role, (ticks1[role] - ticks0[role]) * MS_PER_TICK]));
      if (r.bytes !== BIG) throw new Error(`${s.name}: GET /big: ${r.bytes} bytes arrived, not ${BIG}`);
      const res = { mibPerS: BIG / MiB / ((r.tEnd - r.t0) / 1000), ms: r.tEnd - r.t0, cpuMs, rss: Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, { ...v, growth: v.max - v.before }])) };
      if (!slow) return res;
      // What the function had produced beyond what the reader had taken when it paused (held in
      // the window and the socket buffers between them), and how long the function then stood still.
      const before = stamps.filter((t) => t < resumedAt);
      const lastBefore = Math.max(pausedAt, before[before.length - 1]);
      return { ...res, heldMiB: (before.length * CHUNK - pausedOffset) / MiB, stillMs: Math.min(...stamps.filter((t) => t >= resumedAt)) - lastBefore };
    } finally {
      clearInterval(sampler);
    }
  }

  /** The server's processes by role: the gateway, its workers, the sandboxes under them (bwrap trees). */
  function roles(s) {
    if (s.name !== 'gateway') return { [s.name]: [s.pid] };
    const tree = processTree(s.pid);
    const byPid = new Map(tree.map((p) => [p.pid, p]));
    const inSandbox = (p) => { for (let q = p; q; q = byPid.get(q.ppid)) if (q.comm === 'bwrap') return true; return false; };
    const out = { gateway: [s.pid], worker: [], 'sandboxes (sum)': [] };
    for (const p of tree) {
      if (inSandbox(p)) out['sandboxes (sum)'].push(p.pid);
      else if (/\bcli\.js worker\b|\bfaas(\.js)? worker\b/.test(cmdline(p.pid))) out.worker.push(p.pid);
    }
    if (out.worker.length === 0) throw new Error(`no worker process under the gateway (pid ${s.pid})`);
    return out;
  }

  function report(out, servers) {
    const q = (xs, p) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
    const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
    const s = { date: new Date().toISOString(), cores: os.availableParallelism(), node: process.version, runs: opts.runs, events: opts.events, sse: {}, big: {} };
    for (const side of Object.keys(servers)) {
      const { first, events, ttfb } = out.sse[side];
      s.sse[side] = { firstMs: { p50: median(first), max: Math.max(...first) }, eventMs: { p50: median(events), p95: q(events, 0.95) }, requestToFirstMs: median(ttfb) };
      // RSS growth: the first 64 MiB after start (the warm-up) apart, then the runs.
      const { first: warmup, fast, slow } = out.big[side];
      const later = (runs, role) => { const g = runs.map((r) => r.rss[role].growth); return { p50: median(g), max: Math.max(...g) }; };
      s.big[side] = {
        mibPerS: median(fast.map((r) => r.mibPerS)), heldMiB: median(slow.map((r) => r.heldMiB)), stillMs: median(slow.map((r) => r.stillMs)),
        roles: Object.fromEntries(Object.keys(warmup.rss).map((role) => [role, {
          beforeMiB: warmup.rss[role].before, firstGrowthMiB: warmup.rss[role].growth, cpuMsPer64MiB: median(fast.map((r) => r.cpuMs[role])),
          fastGrowthMiB: later(fast, role), slowGrowthMiB: later(slow, role) }])),
      };
    }
    const g = s.sse.gateway, b = s.sse.bare, G = s.big.gateway, B = s.big.bare;
    const laterMax = (role) => Math.max(G.roles[role].fastGrowthMiB.max || 0, G.roles[role].slowGrowthMiB.max);
    s.targets = { firstEventUnder50ms: g.firstMs.max < 50 };
    for (const role of ['gateway', 'worker']) {
      s.targets[`${role}GrowthUnder16MiB`] = { firstTransfer: G.roles[role].firstGrowthMiB < 16, laterTransfers: laterMax(role) < 16 };
    }
    const pm = (x) => `${x.p50 >= 0 ? '+' : ''}${f(x.p50)} (${x.max >= 0 ? '+' : ''}${f(x.max)})`;
    const lines = [
      `${s.date.slice(0, 10)}, ${s.cores} cores, Node ${process.version}, not pinned; ${opts.runs} runs, medians unless said`,
      `command: node scripts/bench-stream.mjs --runs ${opts.runs} --events ${opts.events}`, '',
      '| SSE, an event every 200 ms (ms) | gateway | bare uWS | added |', '|---|---|---|---|',
      `| first event, sent → arrived, p50 / max | ${f(g.firstMs.p50, 2)} / ${f(g.firstMs.max, 2)} | ${f(b.firstMs.p50, 2)} / ${f(b.firstMs.max, 2)} | ${f(g.firstMs.p50 - b.firstMs.p50, 2)} |`,
      `| every event (${opts.events} a run), p50 / p95 | ${f(g.eventMs.p50, 2)} / ${f(g.eventMs.p95, 2)} | ${f(b.eventMs.p50, 2)} / ${f(b.eventMs.p95, 2)} | ${f(g.eventMs.p50 - b.eventMs.p50, 2)} |`,
      `| request written → first event | ${f(g.requestToFirstMs, 2)} | ${f(b.requestToFirstMs, 2)} | ${f(g.requestToFirstMs - b.requestToFirstMs, 2)} |`,
      '', '| 64 MiB streamed | gateway | bare uWS |', '|---|---|---|',
      `| throughput, full-speed reader (MiB/s) | ${f(G.mibPerS, 0)} (${f(G.mibPerS / B.mibPerS, 2)}×) | ${f(B.mibPerS, 0)} |`,
      `| reader paused ${PAUSE_MS / 1000} s after 1 MiB: held between function and client (MiB); function stood still (ms) | ${f(G.heldMiB)}; ${f(G.stillMs, 0)} | ${f(B.heldMiB)}; ${f(B.stillMs, 0)} |`,
      '', '| process (bare uWS: the baseline) | CPU ms per 64 MiB | RSS at start (MiB) | growth, first 64 MiB after start | growth, runs at full speed p50 (max) | growth, slow reader p50 (max) |', '|---|---|---|---|---|---|',
      ...[...Object.entries(G.roles), ...Object.entries(B.roles)].map(([role, r]) =>
        `| ${role} | ${f(r.cpuMsPer64MiB, 0)} | ${f(r.beforeMiB)} | +${f(r.firstGrowthMiB)} | ${pm(r.fastGrowthMiB)} | ${pm(r.slowGrowthMiB)} |`),
    ];
    const met = (ok) => (ok ? 'met' : 'NOT met');
    lines.push('', `target, first event within 50 ms in every run: ${met(s.targets.firstEventUnder50ms)} (max ${f(g.firstMs.max, 2)} ms)`);
    for (const role of ['gateway', 'worker']) {
      const t = s.targets[`${role}GrowthUnder16MiB`];
      lines.push(`target, ${role} RSS growth < 16 MiB: first 64 MiB after start ${met(t.firstTransfer)} (+${f(G.roles[role].firstGrowthMiB)}), the runs ${met(t.laterTransfers)} (max +${f(laterMax(role))})`);
    }
    console.log(lines.join('\n'));
    if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ ...s, samples: out }, null, 2) + '\n');
  }
}

/** VmRSS summed over the pids that are still there, MiB. */
function rssMiB(pids) {
  const kib = (pid) => { try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0); } catch { return 0; } };
  return pids.reduce((n, pid) => n + kib(pid), 0) / 1024;
}

/**
 * GET over a raw socket (the time is when bytes arrive): `onBody(slice, offset, t, socket)` for
 * each piece of the de-chunked body as it comes. Resolves { bytes, t0 (request written), tEnd }
 * at the last chunk; rejects on a non-200, a body that is not chunked, or a connection that ends early.
 */
function get(port, target, onBody) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let head = Buffer.alloc(0), status, state = 'size', line = '', left = 0, bytes = 0, t0;
    const fail = (msg) => { sock.destroy(); reject(new Error(`GET ${target}: ${msg}`)); };
    sock.on('connect', () => { t0 = now(); sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`); });
    sock.on('data', (data) => {
      const t = now();
      if (status === undefined) {
        head = Buffer.concat([head, data]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]);
        if (status !== 200) return fail(`${text.split('\r\n')[0]} ${head.subarray(end + 4, end + 300)}`);
        if (!/\r\ntransfer-encoding: *chunked/i.test(text)) return fail(`the answer is not chunked:\n${text}`);
        data = head.subarray(end + 4);
      }
      try {
        for (let i = 0; i < data.length && state !== 'done';) {
          if (state === 'size') {
            const nl = data.indexOf(10, i);
            line += data.toString('latin1', i, nl < 0 ? data.length : nl + 1);
            if (nl < 0) break;
            i = nl + 1;
            left = parseInt(line, 16);
            if (!(left >= 0)) return fail(`bad chunk size line ${JSON.stringify(line)}`);
            line = '';
            state = left === 0 ? 'done' : 'data';
          } else {
            const n = Math.min(left, data.length - i);
            if (state === 'data') { onBody(data.subarray(i, i + n), bytes, t, sock); bytes += n; }
            left -= n;
            i += n;
            if (left === 0) [state, left] = state === 'data' ? ['crlf', 2] : ['size', 0];
          }
        }
      } catch (err) { return fail(err.message); }
      if (state === 'done') { sock.destroy(); resolve({ bytes, t0, tEnd: t }); }
    });
    sock.on('error', (err) => fail(err.message));
    sock.on('close', () => fail(`the connection closed after ${bytes} bytes of body`));
  });
}

/** The baseline: bare uWS (loaded as src/http/uws.ts does) running the same function modules in-process. */
async function serveBaseline() {
  const require = createRequire(import.meta.url);
  const uws = require(`uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  const app = uws.App();
  for (const [name, code] of Object.entries(FUNCTIONS)) {
    const fn = (await import(`data:text/javascript,${encodeURIComponent(code)}`)).default;
    app.get(`/${name}`, async (res, req) => {
      const url = `http://127.0.0.1${req.getUrl()}?${req.getQuery() ?? ''}`; // req is gone after the first await
      let aborted = false;
      let writable;
      res.onAborted(() => { aborted = true; writable?.(); });
      res.onWritable(() => { writable?.(); return true; });
      let sent = false;
      try {
        const response = await fn.fetch(new Request(url));
        if (aborted) return;
        res.cork(() => { res.writeStatus('200 OK'); response.headers.forEach((v, k) => res.writeHeader(k, v)); });
        sent = true;
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (aborted) return void reader.cancel();
          if (done) return void res.cork(() => res.end());
          let ok;
          res.cork(() => { ok = res.write(value); });
          if (!ok) await new Promise((r) => { writable = r; });
          writable = undefined;
        }
      } catch (err) {
        if (aborted) return;
        if (sent) res.close();
        else res.cork(() => res.writeStatus('500 Internal Server Error').end(`${err?.stack ?? err}\n`));
      }
    });
  }
  app.listen('127.0.0.1', 0, (sock) => {
    if (!sock) { process.stderr.write('bench-stream baseline: could not listen\n'); process.exit(1); }
    process.stdout.write(`listening http=${uws.us_socket_local_port(sock)}\n`);
  });
}
