// The operators' dashboard, served at GET / on the admin port: one self-contained page, inline
// CSS and vanilla JS, no framework, no build step, nothing fetched from elsewhere.
//
// It listens on GET /events (server-sent events): one `history` event first, each worker's
// samples over the last minutes at 1 s ({ workers: { id: [{ t, score, cpu, mem, io, inFlight }] } }),
// then a `stats` event every second carrying the GET /stats JSON. Each tick appends one sample
// per worker to the history (5 minutes kept) and redraws workers, routes (with their calls' CPU
// time and peak memory, mean / p99, where workers report them), recent errors and the config sync
// state. The stream is read with fetch rather than EventSource, which cannot send a header: when
// the gateway has an admin token (--admin-token-file), /events answers 401 and the page asks for
// the token, keeps it in sessionStorage (this tab only; never a cookie, so another site's page has
// nothing a browser would send for it) and sends it as `Authorization: Bearer`. A stream that
// ends is reopened after a second; a new connection starts with a new history.
//
// Route keys and error messages are user-controlled: data reaches the page only through
// textContent and setAttribute, never innerHTML, and the CSP forbids anything but this page's
// own inline code and same-origin fetches.
//
// The Functions panel (write, deploy, invoke, delete; a route's latency, errors and log) is
// dashboard-functions.ts, included here.
import { FUNCTIONS_HTML, FUNCTIONS_SCRIPT, FUNCTIONS_STYLE } from './dashboard-functions.js';

const STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --panel: #ffffff; --fg: #1f2630; --muted: #6b7380; --line: #e2e5e9;
  --accent: #2f6fdb; --ok: #1a7f3c; --warn: #a35c00; --bad: #c0262d; --bad-bg: #fcebec;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111419; --panel: #181c23; --fg: #e3e6ea; --muted: #8e97a4; --line: #2a3039;
    --accent: #6aa5ff; --ok: #4cc472; --warn: #e3a53c; --bad: #f26b6b; --bad-bg: #3a1e21;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header {
  display: flex; align-items: center; gap: 20px; flex-wrap: wrap;
  padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--line);
}
h1 { font-size: 16px; margin: 0; font-weight: 600; }
h2 { font-size: 12px; margin: 0 0 10px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
main { display: grid; gap: 16px; padding: 16px 20px; grid-template-columns: minmax(0, 2fr) minmax(300px, 1fr); }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
#workers-panel { grid-column: 1 / -1; }
@media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); } }
.side { display: grid; gap: 16px; align-content: start; min-width: 0; }
.muted { color: var(--muted); }
.mono, .key { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 13px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.badge { display: inline-block; padding: 0 7px; border: 1px solid currentColor; border-radius: 10px; font-size: 12px; line-height: 18px; }
.summary { display: flex; gap: 18px; margin-left: auto; font-variant-numeric: tabular-nums; }
.summary b { font-weight: 600; }
#conn::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: currentColor; }
#conn[data-state="live"] { color: var(--ok); }
#conn[data-state="connecting"], #conn[data-state="reconnecting"], #conn[data-state="stale"] { color: var(--warn); }
#conn[data-state="offline"], #conn[data-state="token"] { color: var(--bad); }
#token-form { display: flex; gap: 6px; align-items: center; }
#token-form[hidden] { display: none; }
#token-form input { font: inherit; padding: 2px 6px; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); width: 220px; }
#token-form button { font: inherit; padding: 2px 10px; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); color: var(--fg); cursor: pointer; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; text-align: left; }
th { font-weight: 500; color: var(--muted); font-size: 12px; }
td.key { max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
.table-scroll { overflow-x: auto; }
.routes th, .routes td { padding: 5px 6px; }
tr.empty td { color: var(--muted); text-align: center; }
.workers { display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card.down { border-color: var(--bad); }
.card-head { display: flex; align-items: baseline; gap: 12px; margin-bottom: 8px; }
.card-head strong { font-size: 15px; }
.facts { display: flex; gap: 18px; margin: 0 0 8px; flex-wrap: wrap; }
.facts div { display: flex; gap: 6px; align-items: baseline; }
.facts dt { color: var(--muted); font-size: 12px; }
.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.sparks { display: grid; gap: 10px; grid-template-columns: repeat(5, minmax(0, 1fr)); }
.spark-head { display: flex; justify-content: space-between; font-size: 12px; }
.spark-head span:last-child { font-variant-numeric: tabular-nums; font-weight: 600; }
.spark svg { display: block; width: 100%; height: 34px; border-bottom: 1px solid var(--line); }
.spark path { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; stroke-linejoin: round; stroke-linecap: round; }
dl.sync { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.sync dt { color: var(--muted); }
dl.sync dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
dl.sync dd.error { color: var(--bad); background: var(--bad-bg); border-radius: 4px; padding: 2px 6px; }
ol.errors { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow-y: auto; }
ol.errors li { padding: 6px 0; border-bottom: 1px solid var(--line); }
ol.errors .line { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; font-size: 13px; }
ol.errors .message { margin-top: 2px; overflow-wrap: anywhere; }
.empty-note { color: var(--muted); padding: 6px 0; }
${FUNCTIONS_STYLE}`;

const SCRIPT = String.raw`
'use strict';
const WINDOW_MS = 5 * 60 * 1000;  // the most the sparklines cover
const MIN_SPAN_MS = 5 * 1000;     // the least: a young gateway's first samples are not a smear
const MAX_POINTS = 400;           // per worker; 1 s ticks need 300
const STALE_MS = 5000;            // no tick for this long: the indicator says so
const SERIES = [
  { key: 'score', label: 'score', max: 100, digits: 1 },
  { key: 'cpu', label: 'cpu %', max: 100, digits: 1 },
  { key: 'mem', label: 'mem %', max: 100, digits: 1 },
  { key: 'io', label: 'io %', max: 100, digits: 1 },
  { key: 'inFlight', label: 'in-flight', max: null, digits: 0 },
];
const SVG = 'http://www.w3.org/2000/svg';
const DASH = '–';

const history = new Map();  // worker id → [{ t, score, cpu, mem, io, inFlight }], oldest first
const cards = new Map();    // worker id → { root, fields, paths }
let lastTickAt = 0;

// ---- DOM helpers: data only ever goes through textContent and setAttribute ----

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function badge(text, tone) { return el('span', { class: 'badge ' + tone, text }); }

// ---- formatting ----

function isNum(v) { return typeof v === 'number' && Number.isFinite(v); }
function fixed(v, digits) { return isNum(v) ? v.toFixed(digits) : DASH; }
function count(v) { return isNum(v) ? String(Math.round(v)) : DASH; }
function millis(v) {
  if (!isNum(v)) return DASH;
  if (v < 10) return v.toFixed(2) + ' ms';
  if (v < 1000) return v.toFixed(1) + ' ms';
  return (v / 1000).toFixed(2) + ' s';
}
function mebibytes(v) {
  if (!isNum(v)) return DASH;
  if (v < 10) return v.toFixed(1) + ' MiB';
  if (v < 1024) return Math.round(v) + ' MiB';
  return (v / 1024).toFixed(2) + ' GiB';
}
// "mean / p99" with the unit once when both have the same: "0.52 / 1.20 ms".
function pair(mean, p99, format) {
  if (!isNum(mean) && !isNum(p99)) return DASH;
  const a = format(mean);
  const b = format(p99);
  const unit = (text) => text.slice(text.indexOf(' ') + 1);
  return (a !== DASH && unit(a) === unit(b) ? a.slice(0, a.indexOf(' ')) : a) + ' / ' + b;
}
function age(ms) {
  if (!isNum(ms)) return DASH;
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  return (s / 3600).toFixed(1) + ' h ago';
}
function duration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? s + ' s' : s % 60 === 0 ? s / 60 + ' min' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
}
function clock(t) { return isNum(t) ? new Date(t).toLocaleTimeString([], { hour12: false }) : DASH; }
function byId(a, b) { return String(a).localeCompare(String(b), undefined, { numeric: true }); }
function stateTone(state) { return state === 'ok' ? 'ok' : state === 'stale' ? 'warn' : 'bad'; }

// ---- connection ----

function setConn(state) {
  const conn = $('conn');
  conn.dataset.state = state;
  conn.textContent = state === 'stale' ? 'no data for ' + Math.round((Date.now() - lastTickAt) / 1000) + ' s'
    : state === 'token' ? 'needs the admin token' : state;
}

const TOKEN_KEY = 'faas-admin-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';

async function connect() {
  setConn('connecting');
  const headers = { accept: 'text/event-stream' };
  if (token) headers.authorization = 'Bearer ' + token;
  let res;
  try {
    res = await fetch('/events', { headers, cache: 'no-store' });
  } catch (err) {
    setConn('offline');
    return setTimeout(connect, 3000);
  }
  if (res.status === 401) return askToken(token !== '');
  if (!res.ok || !res.body) {
    setConn('offline');
    return setTimeout(connect, 3000);
  }
  setConn('live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const events = buffered.split(/\r?\n\r?\n/);
      buffered = events.pop();
      for (const e of events) dispatch(e);
    }
  } catch (err) {
    // the connection broke: open a new one below
  }
  setConn('reconnecting');
  setTimeout(connect, 1000);
}

// One text/event-stream event (of /events, and of the Functions panel's followed log): "event:"
// names it, "data:" lines carry its data, ":" lines are comments. → { name, data } with the data
// lines joined by "\n", or null for a block without data.
function parseEvent(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 ? null : { name, data: data.join('\n') };
}

function dispatch(block) {
  const event = parseEvent(block);
  if (!event) return;
  if (event.name === 'history') handle(onHistory, event.name, event.data);
  else if (event.name === 'stats') handle(onStats, event.name, event.data);
}

function handle(fn, type, text) {
  try {
    fn(JSON.parse(text));
  } catch (err) {
    console.error('dashboard: bad ' + type + ' event', err);
  }
}

function askToken(wrong) {
  setConn('token');
  $('token-note').textContent = wrong ? 'that token was refused' : '';
  $('token-form').hidden = false;
  $('token').focus();
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token-form').hidden = true;
  connect();
});

setInterval(() => {
  const state = $('conn').dataset.state;
  if ((state === 'live' || state === 'stale') && lastTickAt && Date.now() - lastTickAt > STALE_MS) setConn('stale');
}, 1000);

// ---- events ----

function onHistory(data) {
  history.clear();
  for (const [id, points] of Object.entries((data && data.workers) || {})) {
    if (Array.isArray(points)) history.set(id, points.filter((p) => p && isNum(p.t)).slice(-MAX_POINTS));
  }
}

function onStats(stats) {
  lastTickAt = Date.now();
  if ($('conn').dataset.state !== 'live') setConn('live');
  const now = isNum(stats.time) ? stats.time : Date.now();
  const workers = (stats.workers || []).slice().sort((a, b) => byId(a.id, b.id));
  for (const w of workers) record(w, now);
  renderSummary(stats, workers);
  renderWorkers(workers, now);
  renderRoutes(stats.routes || []);
  renderErrors(stats.recentErrors || []);
  renderSync(stats.sync || {}, now);
  $('updated').textContent = clock(now);
  $('updated').dataset.time = String(now);
  $('window').textContent = isNum(stats.windowS) ? String(stats.windowS) : DASH;
  functionsOnStats(stats);
}

function record(w, now) {
  let points = history.get(w.id);
  if (!points) history.set(w.id, points = []);
  const last = points[points.length - 1];
  if (!last || last.t < now) points.push({ t: now, score: w.score, cpu: w.cpu, mem: w.mem, io: w.io, inFlight: w.inFlight });
  let drop = Math.max(0, points.length - MAX_POINTS);
  while (drop < points.length && points[drop].t < now - WINDOW_MS) drop++;
  if (drop > 0) points.splice(0, drop);
}

// ---- rendering ----

function renderSummary(stats, workers) {
  const up = workers.filter((w) => w.available).length;
  const routes = stats.routes || [];
  const sum = (key) => routes.reduce((total, r) => total + (isNum(r[key]) ? r[key] : 0), 0);
  $('sum-workers').textContent = up + '/' + workers.length;
  $('sum-workers').className = up === workers.length && up > 0 ? '' : 'bad';
  $('sum-rps').textContent = sum('rps').toFixed(1);
  $('sum-errors').textContent = String(sum('errors'));
  $('sum-errors').className = sum('errors') > 0 ? 'bad' : '';
}

function renderWorkers(workers, now) {
  const span = chartSpan(now);
  $('span').textContent = duration(span);
  const list = $('workers');
  const seen = new Set();
  for (const w of workers) {
    seen.add(w.id);
    const card = cards.get(w.id) || createCard(w.id);
    updateCard(card, w, now, span);
    list.append(card.root);  // moves existing cards into sorted order
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) { card.root.remove(); cards.delete(id); history.delete(id); }
  }
  $('workers-empty').hidden = workers.length > 0;
}

function createCard(id) {
  const fields = {};
  const field = (name) => (fields[name] = el('span', { 'data-field': name }));
  const fact = (label, name) => el('div', {}, el('dt', { text: label }), el('dd', {}, field(name)));
  const paths = {};
  const sparks = SERIES.map((s) => {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 100 32');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-label', s.label + ' over the last minutes');
    paths[s.key] = document.createElementNS(SVG, 'path');
    svg.append(paths[s.key]);
    return el('div', { class: 'spark', 'data-series': s.key },
      el('div', { class: 'spark-head' }, el('span', { class: 'muted', text: s.label }), field(s.key)), svg);
  });
  const root = el('article', { class: 'card', 'data-testid': 'worker-card', 'data-worker': id },
    el('div', { class: 'card-head' }, el('strong', { class: 'mono', text: id }), field('pid'), field('state')),
    el('dl', { class: 'facts' }, fact('rps', 'rps'), fact('p50', 'p50'), fact('p99', 'p99'), fact('errors', 'errors'), fact('restarts', 'restarts')),
    el('div', { class: 'sparks' }, ...sparks));
  const card = { root, fields, paths };
  cards.set(id, card);
  return card;
}

function updateCard(card, w, now, span) {
  const f = card.fields;
  card.root.classList.toggle('down', !w.available);
  card.root.dataset.available = String(Boolean(w.available));
  f.pid.textContent = 'pid ' + count(w.pid);
  f.pid.className = 'muted';
  f.state.replaceChildren(badge(w.available ? 'up' : 'down', w.available ? 'ok' : 'bad'));
  f.rps.textContent = fixed(w.rps, 1);
  f.p50.textContent = millis(w.p50Ms);
  f.p99.textContent = millis(w.p99Ms);
  f.errors.textContent = count(w.errors);
  f.errors.className = w.errors > 0 ? 'bad' : '';
  f.restarts.textContent = count(w.restarts);
  f.restarts.className = w.restarts > 0 ? 'warn' : '';
  const points = history.get(w.id) || [];
  for (const s of SERIES) {
    f[s.key].textContent = fixed(w[s.key], s.digits);
    card.paths[s.key].setAttribute('d', sparkline(points, s, now - span, span));
  }
}

// What every chart shows: the samples held (WINDOW_MS at most), the same span for all workers.
function chartSpan(now) {
  let oldest = now;
  for (const points of history.values()) if (points.length > 0 && points[0].t < oldest) oldest = points[0].t;
  return Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, now - oldest));
}

// An SVG path over 0..100 × 0..32: time on x (span ms from "from"), the value on y against a fixed
// 0–100 scale, or for counts against the largest value shown. Missing samples break the line.
function sparkline(points, series, from, span) {
  const shown = points.filter((p) => p.t >= from);
  let top = series.max;
  if (top === null) top = Math.max(1, ...shown.map((p) => (isNum(p[series.key]) ? p[series.key] : 0)));
  let d = '';
  let pen = false;
  for (const p of shown) {
    const v = p[series.key];
    if (!isNum(v)) { pen = false; continue; }
    const x = ((p.t - from) / span) * 100;
    const y = 31 - Math.min(1, Math.max(0, v / top)) * 30;
    d += (pen ? 'L' : 'M') + x.toFixed(2) + ' ' + y.toFixed(2);
    pen = true;
  }
  return d;
}

function renderRoutes(routes) {
  const cell = (text, cls, name) => el('td', name ? { class: cls, 'data-field': name, text } : { class: cls, text });
  const rows = routes.slice().sort((a, b) => byId(a.key, b.key)).map((r) =>
    el('tr', { 'data-testid': 'route-row', 'data-key': r.key, 'data-state': r.state },
      el('td', { class: 'key', title: r.key, text: r.key }),
      el('td', {}, badge(r.state, stateTone(r.state))),
      cell(r.runtime || DASH, ''),
      cell(fixed(r.rps, 1), 'num', 'rps'),
      cell(millis(r.p50Ms), 'num', 'p50'),
      cell(millis(r.p99Ms), 'num', 'p99'),
      cell(pair(r.cpuMeanMs, r.cpuP99Ms, millis), 'num', 'cpu'),
      cell(pair(r.memPeakMeanMb, r.memPeakP99Mb, mebibytes), 'num', 'mem'),
      cell(count(r.errors), r.errors > 0 ? 'num bad' : 'num', 'errors'),
      cell(count(r.calls), 'num', 'calls')));
  if (rows.length === 0) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: '10', text: 'no routes' })));
  $('routes').replaceChildren(...rows);
}

function renderErrors(errors) {
  const items = errors.slice(0, 50).map((e) =>
    el('li', { 'data-testid': 'recent-error', 'data-request-id': e.requestId || '' },
      el('div', { class: 'line' },
        el('span', { class: 'muted', text: clock(e.time) }),
        badge(String(e.status ?? DASH), 'bad'),
        el('span', { class: 'mono', text: e.code || DASH }),
        el('span', { class: 'key', text: e.route || DASH }),
        el('span', { class: 'muted mono', title: 'request id', text: e.requestId || DASH }),
        e.worker ? el('span', { class: 'muted', text: 'on ' + e.worker }) : ''),
      el('div', { class: 'message', text: e.message || '' })));
  $('errors').replaceChildren(...items);
  $('errors-empty').hidden = items.length > 0;
}

function renderSync(sync, now) {
  const box = $('sync-state');
  const since = (t) => (isNum(t) ? age(now - t) : 'never');
  const row = (label, value, cls) => [el('dt', { text: label }), el('dd', cls ? { class: cls, text: value } : { text: value })];
  box.dataset.state = sync.lastError ? 'error' : 'ok';
  box.replaceChildren(
    ...row('last sync', since(sync.lastSyncAt)),
    ...row('last success', since(sync.lastSuccessAt)),
    ...row('routes', count(sync.routes)),
    ...row('config errors', count(sync.configErrors), sync.configErrors > 0 ? 'bad' : ''),
    ...(sync.lastError ? row('last error', sync.lastError, 'error') : []),
    // --cluster-db: where the rows come from, and whether this node can read it now.
    ...(sync.cluster ? [
      ...row('cluster source', sync.cluster.source),
      ...row('cluster', sync.cluster.connected ? 'connected, read ' + since(sync.cluster.lastSyncAt) : 'unreachable: serving the last copy', sync.cluster.connected ? '' : 'error'),
      ...(sync.cluster.lastError ? row('cluster error', sync.cluster.lastError, 'error') : []),
    ] : []));
  if (sync.cluster && !sync.cluster.connected) box.dataset.state = 'error';
}

${FUNCTIONS_SCRIPT}
connect();
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<title>faas gateway</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>faas gateway</h1>
  <span id="conn" data-state="connecting">connecting</span>
  <form id="token-form" hidden>
    <input id="token" type="password" autocomplete="off" placeholder="admin token" aria-label="admin token">
    <button type="submit">connect</button>
    <span id="token-note" class="bad"></span>
  </form>
  <span class="muted">updated <span id="updated">–</span></span>
  <div class="summary">
    <span>workers up <b id="sum-workers">–</b></span>
    <span>rps <b id="sum-rps">–</b></span>
    <span>errors <b id="sum-errors">–</b></span>
    <span class="muted">rates over the last <span id="window">–</span> s</span>
  </div>
</header>
<main>
  <section id="workers-panel">
    <h2>Workers <span class="muted">· charts: last <span id="span">–</span></span></h2>
    <div id="workers" class="workers"></div>
    <div id="workers-empty" class="empty-note">no workers yet</div>
  </section>
  <section>
    <h2>Routes</h2>
    <div class="table-scroll">
    <table class="routes">
      <thead><tr>
        <th>route</th><th>state</th><th>runtime</th><th class="num">rps</th><th class="num">p50</th>
        <th class="num">p99</th>
        <th class="num" title="CPU time of the function's instance during a call, mean / p99 (a node instance runs many calls at once: the instance's CPU meanwhile)">cpu</th>
        <th class="num" title="Most memory charged to the function's instance during a call, mean / p99">mem peak</th>
        <th class="num">errors</th><th class="num">calls</th>
      </tr></thead>
      <tbody id="routes"></tbody>
    </table>
    </div>
  </section>
  <div class="side">
    <section>
      <h2>Config sync</h2>
      <dl id="sync-state" class="sync"></dl>
    </section>
    <section>
      <h2>Recent errors</h2>
      <ol id="errors" class="errors"></ol>
      <div id="errors-empty" class="empty-note">none</div>
    </section>
  </div>
${FUNCTIONS_HTML}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
