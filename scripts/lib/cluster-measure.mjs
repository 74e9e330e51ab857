// The measurements of the several-node setup (scripts/lib/cluster-hosts.mjs, cluster-services.mjs),
// shared by test/integration/cluster.test.ts (which asserts on them) and scripts/cluster-bench.mjs
// (which prints them): propagation of a PostgreSQL change to every node, failover through HAProxy
// when a node is killed, the share of calls each node answers, calls allowed under a rate limit.
//
// Who answered a call through HAProxy: every call carries an x-request-id the gateway keeps, and
// each node's access log (its log file) says which ids it answered.
import fs from 'node:fs';
import { processTree } from './processes.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Functions the measurements deploy (node, Workers style). */
export const FUNCTIONS = {
  text: (body) => ({ runtime: 'node', code: `export default { fetch: () => new Response(${JSON.stringify(body)}) }` }),
  /** Answers after `ms`: calls stay in flight long enough to be caught by a kill. */
  slow: (ms) => ({ runtime: 'node', code: `export default { fetch: async () => { await new Promise((r) => setTimeout(r, ${ms})); return new Response('slow'); } }` }),
  /** Spins the CPU for `ms`. */
  spin: (ms) => ({ runtime: 'node', code: `export default { fetch: () => { const end = Date.now() + ${ms}; while (Date.now() < end); return new Response('spun'); } }` }),
};

/** One HTTP call: { status, text, sentAt, doneAt, error } (error: no HTTP answer). Never throws. */
export async function call(url, { headers = {}, timeoutMs = 5000 } = {}) {
  const sentAt = performance.now();
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return { status: res.status, text, sentAt, doneAt: performance.now() };
  } catch (err) {
    return { status: 0, text: '', sentAt, doneAt: performance.now(), error: err?.cause?.code ?? err?.name ?? String(err) };
  }
}

/**
 * Polls `url` (one call at a time, `pollMs` apart) until `served(answer)`; resolves with the time
 * from `since` (performance.now()) to the sending of the first call that was served — the change
 * was in place by then, and not when the previous call was sent — and to its answer (a first call
 * includes the function's cold start). { sentMs, servedMs }, or { timedOut: true, last }.
 */
export async function timeUntilServed(url, served, { since, timeoutMs = 10_000, pollMs = 20 }) {
  let last;
  while (performance.now() - since < timeoutMs) {
    last = await call(url, { timeoutMs: 3000 });
    if (served(last)) return { sentMs: last.sentAt - since, servedMs: last.doneAt - since };
    await sleep(pollMs);
  }
  return { timedOut: true, last: last && { status: last.status, text: last.text.slice(0, 200), error: last.error } };
}

/**
 * Runs `change` (resolves once committed), then times each gateway until `served` holds for `path`
 * there: [{ node, sentMs, servedMs } | { node, timedOut, last }].
 */
export async function propagation(gateways, path, change, served, opts = {}) {
  await change();
  const since = performance.now();
  return Promise.all(gateways.map(async (g) => ({ node: g.name, ...(await timeUntilServed(`${g.url}${path}`, served, { since, ...opts })) })));
}

/**
 * Calls answered per node, read from each node's access log: request ids starting with `tag`;
 * with `status`, only the calls answered with a status it accepts.
 */
export function answeredBy(gateways, tag, status = () => true) {
  const needle = `"requestId":"${tag}`;
  return Object.fromEntries(gateways.map((g) => {
    const lines = logText(g).split('\n').filter((l) => l.includes(needle));
    return [g.name, lines.filter((l) => status(Number(/"status":(\d+)/.exec(l)?.[1]))).length];
  }));
}

function logText(gw) {
  try { return fs.readFileSync(gw.log, 'utf8'); } catch { return ''; }
}

/** answeredBy, once the logs account for `expected` calls (log lines are written asynchronously). */
async function countedBy(gateways, tag, expected, status) {
  const all = () => Object.values(answeredBy(gateways, tag)).reduce((a, b) => a + b, 0);
  for (let i = 0; i < 30 && all() < expected; i++) await sleep(100);
  return answeredBy(gateways, tag, status);
}

/**
 * Closed-loop load: `concurrency` clients call `url` back to back until stop() (or `calls` calls in
 * all), each call tagged `${tag}-${i}`. stop() resolves with every call's { id, status, sentAt, doneAt, error }.
 */
export function load(url, { tag, concurrency = 4, calls = Infinity, timeoutMs = 10_000 }) {
  const results = [];
  let next = 0;
  let stopped = false;
  const client = async () => {
    while (!stopped && next < calls) {
      const i = next++;
      const r = await call(url, { headers: { 'x-request-id': `${tag}-${i}` }, timeoutMs });
      r.id = `${tag}-${i}`;
      r.text = r.text.slice(0, 200);
      results.push(r);
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, client));
  return {
    results,
    done: done.then(() => results),
    stop: async () => {
      stopped = true;
      await done;
      return results;
    },
  };
}

/** Share of `calls` calls through HAProxy answered by each node: { byNode, ok, failed, statuses }. */
export async function share(lb, gateways, path, { tag, calls = 300, concurrency = 4 }) {
  const results = await load(`${lb.url}${path}`, { tag, concurrency, calls }).done;
  const ok = results.filter((r) => r.status === 200).length;
  const byNode = await countedBy(gateways, `${tag}-`, results.length - results.filter((r) => r.status === 0).length);
  return { byNode, ok, failed: results.length - ok, statuses: tally(results) };
}

export function tally(results) {
  const out = {};
  for (const r of results) {
    const k = r.status === 0 ? r.error : String(r.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * Kills a gateway with SIGKILL (it and everything it started at once: the node dies) under
 * closed-loop load through HAProxy, and measures: downMs (kill → HAProxy shows it DOWN),
 * failed calls (no 2xx), those in flight through HAProxy at the kill (an upper bound on those
 * on the victim), failed calls sent after HAProxy marked it DOWN, and failed calls that one of
 * `survivors` answered (its access log has their id): none, if only calls on the victim failed.
 *
 * How a call on the victim fails depends on the client's connection to HAProxy: a call that came
 * on a new connection gets 502 (logged `SH--`); one on a kept-alive connection (fetch's, here) sees
 * that connection closed without an answer (UND_ERR_SOCKET / ECONNRESET), and HAProxy 2.6 logs no
 * line for it — its answer for a reused server connection that closed, so that a client may retry.
 */
export async function failover(hosts, lb, victim, path, { tag, survivors = [], concurrency = 4, warmMs = 1000, afterMs = 1000, timeoutMs = 30_000 }) {
  const traffic = load(`${lb.url}${path}`, { tag, concurrency });
  await sleep(warmMs);
  const tree = processTree(victim.proc.child.pid);
  const killAt = performance.now();
  for (const p of tree) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  let downAt;
  let status;
  while (performance.now() - killAt < timeoutMs) {
    status = (await lb.servers())[victim.name]?.status;
    if (status !== undefined && /^(DOWN|MAINT|NOLB)/.test(status)) {
      downAt = performance.now();
      break;
    }
    await sleep(25);
  }
  await sleep(afterMs);
  const results = await traffic.stop();
  await victim.proc.exited;
  const failed = results.filter((r) => r.status < 200 || r.status > 299);
  return {
    downMs: downAt === undefined ? undefined : downAt - killAt,
    lastStatus: status,
    calls: results.length,
    failed: failed.length,
    failedStatuses: tally(failed),
    inFlightAtKill: results.filter((r) => r.sentAt <= killAt && r.doneAt >= killAt).length,
    failedAfterDown: downAt === undefined ? undefined : failed.filter((r) => r.sentAt > downAt).length,
    /** Failed calls that a surviving node has a log line for: calls that were not on the victim. */
    failedElsewhere: failed.filter((r) => survivors.some((g) => logText(g).includes(`"requestId":"${r.id}"`))).map((r) => r.id),
    checkMs: lb.interMs * lb.fall,
  };
}

/**
 * Open-loop calls at `sendRps` for `seconds` through HAProxy to a rate-limited route:
 * { allowed (2xx), refused (429), other, elapsedS, byNode (allowed calls per node, from their logs) }.
 */
export async function rateLimited(lb, gateways, path, { tag, sendRps = 40, seconds = 5 }) {
  const pending = [];
  const start = performance.now();
  for (let i = 0; i < sendRps * seconds; i++) {
    const at = start + (i * 1000) / sendRps;
    const wait = at - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(call(`${lb.url}${path}`, { headers: { 'x-request-id': `${tag}-${i}` } }));
  }
  const results = await Promise.all(pending);
  const elapsedS = (performance.now() - start) / 1000;
  const allowed = results.filter((r) => r.status >= 200 && r.status < 300).length;
  const refused = results.filter((r) => r.status === 429).length;
  const byNode = await countedBy(gateways, `${tag}-`, results.filter((r) => r.status !== 0).length, (s) => s >= 200 && s < 300);
  return { allowed, refused, other: tally(results.filter((r) => r.status !== 429 && (r.status < 200 || r.status > 299))), elapsedS, byNode };
}

/** CPU-bound calls sent straight to one gateway, `concurrency` at a time, until stop(). */
export function hog(gw, path, { concurrency = 2 } = {}) {
  return load(`${gw.url}${path}`, { tag: `hog${Date.now()}`, concurrency, timeoutMs: 30_000 });
}

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
