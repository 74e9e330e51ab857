// The dashboard's script (dashboard.ts assembles the page; its header says what the page does):
// the event stream, the workers, routes, errors and sync state, the page's helpers, and the
// Functions panel's script appended. Browser code in a string: no build step.
import { FUNCTIONS_SCRIPT } from './dashboard-functions.js';

export const SCRIPT = String.raw`
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
function stateTone(state) { return state === 'ok' ? 'ok' : state === 'stale' || state === 'building' ? 'warn' : 'bad'; }

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
  try {
    await readEvents(res, dispatch);
  } catch (err) {
    // the connection broke: open a new one below
  }
  setConn('reconnecting');
  setTimeout(connect, 1000);
}

// Hands each event block of a text/event-stream answer to onBlock as it comes, until the stream
// ends; rejects when the connection breaks (of /events, and of the Functions panel's followed log).
async function readEvents(res, onBlock) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    const events = buffered.split(/\r?\n\r?\n/);
    buffered = events.pop();
    for (const block of events) onBlock(block);
  }
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
