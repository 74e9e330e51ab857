// The dashboard's Functions panel (dashboard.ts includes these strings in its one page; no build
// step): the functions of GET /api/v1/functions; a form to write one (key, runtime, mode, limits,
// handler, env, code) and deploy it with PUT and If-Match / If-None-Match: *, whose 422 problems
// are shown at the field each names, in the API's own words; delete with confirm() and If-Match;
// an invoke form (POST /api/v1/functions/{key}/invoke) showing status, headers, body, timing and
// what the function printed for that request id; and, for the function or a route row clicked,
// its latency over the minutes the page has been open (from the `stats` events), its recent
// errors, and its log, followed (GET /api/v1/logs?follow=1&route=KEY, read with fetch so the
// token can go as a header).
//
// As in the rest of the page, data reaches the DOM only through textContent, value and
// setAttribute; every API call carries the admin token from sessionStorage when there is one.
// It uses the page's helpers ($, el, badge, millis, sparkline, readEvents, parseEvent, token, askToken, …).
// Its markup and style are dashboard-functions-view.ts; a route's detail, dashboard-route-detail.ts.

import { ROUTE_DETAIL_SCRIPT } from './dashboard-route-detail.js';

export const FUNCTIONS_SCRIPT = String.raw`
// ---- functions: the API, with the token ----

const API = '/api/v1';
const FORM_FIELDS = ['method', 'path', 'runtime', 'mode', 'memory_mb', 'timeout_ms', 'handler', 'env', 'code'];
const INT_FIELDS = ['memory_mb', 'timeout_ms'];
const MAX_LOG_LINES = 300;
const routeHistory = new Map();   // route key → [{ t, p50, p99 }], oldest first
let editing = null;               // { key, etag, config } of the function in the form; null: a new one
let selected = null;              // the route key the detail shows
let follow = null;                // the AbortController of the log being followed
let lastStats = null;
let routeKeys = '';                // the served keys of the last tick: the list reloads when they change

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  if (token) headers.authorization = 'Bearer ' + token;
  return headers;
}

// fetch + JSON; a 401 asks for the token as /events does.
async function api(method, path, body, extra) {
  const headers = authHeaders(extra);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(API + path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (err) { data = null; }
  if (res.status === 401) askToken(token !== '');
  return { status: res.status, headers: res.headers, data };
}

const enc = (key) => encodeURIComponent(key);

// ---- the list ----

async function loadFunctions() {
  const note = $('fn-list-note');
  let r;
  try {
    r = await api('GET', '/functions');
  } catch (err) {
    note.textContent = 'could not load functions';
    return;
  }
  if (r.status !== 200 || !r.data) {
    note.textContent = r.status === 401 ? 'needs the admin token' : 'could not load functions (' + r.status + ')';
    return;
  }
  const items = (r.data.functions || []).map((f) => {
    const state = (f.serving && f.serving.state) || 'pending';
    const li = el('li', { 'data-testid': 'function-item', 'data-key': f.key, role: 'option', 'aria-selected': String(editing !== null && editing.key === f.key) },
      el('span', { class: 'key', title: f.key, text: f.key }), badge(state, stateTone(state)));
    li.addEventListener('click', () => openFunction(f.key));
    return li;
  });
  $('fn-list').replaceChildren(...items);
  note.textContent = items.length === 0 ? 'no functions yet' : '';
  note.hidden = items.length > 0;
}

// ---- the form ----

function fieldBox(name) { return document.querySelector('#fn-form .field[data-field="' + name + '"]'); }

function clearProblems() {
  for (const name of FORM_FIELDS) {
    const box = fieldBox(name);
    box.removeAttribute('data-invalid');
    box.querySelector('.field-error').textContent = '';
  }
  $('fn-error').textContent = '';
  $('fn-problems').replaceChildren();
  $('fn-reload').hidden = true;
}

function setStatus(text, tone) {
  const s = $('fn-status');
  s.textContent = text;
  s.className = tone || '';
}

function showFieldProblem(name, text) {
  const box = fieldBox(name);
  box.setAttribute('data-invalid', 'true');
  const out = box.querySelector('.field-error');
  out.textContent = out.textContent ? out.textContent + '; ' + text : text;
}

// Which input a problem of the API names: "v.memory_mb must be …" → memory_mb; "functions.k …" → the key.
function problemField(text) {
  if (/^functions\.k\b/.test(text)) return 'path';
  const m = /^v\.([a-z_]+)/.exec(text);
  if (m && FORM_FIELDS.includes(m[1]) && m[1] !== 'method' && m[1] !== 'path') return m[1];
  return null;
}

function showProblems(problems, message) {
  let general = 0;
  for (const p of problems) {
    const name = problemField(p);
    if (name) showFieldProblem(name, p);
    else { $('fn-problems').append(el('li', { text: p })); general++; }
  }
  if (general > 0 || problems.length === 0) $('fn-error').textContent = message || 'refused';
}

function openEditor(key, etag, config) {
  editing = key === null ? null : { key, etag, config };
  clearProblems();
  setStatus('');
  $('fn-work').hidden = false;
  const c = config || { runtime: 'node' };
  const colon = key ? key.indexOf(':') : -1;
  $('fn-method').value = key ? key.slice(0, colon) : 'GET';
  $('fn-path').value = key ? key.slice(colon + 1) : '';
  $('fn-runtime').value = c.runtime || 'node';
  $('fn-mode').value = c.mode || '';
  $('fn-memory_mb').value = c.memory_mb == null ? '' : String(c.memory_mb);
  $('fn-timeout_ms').value = c.timeout_ms == null ? '' : String(c.timeout_ms);
  $('fn-handler').value = c.handler || '';
  $('fn-env').value = Object.entries(c.env || {}).map(([k, v]) => k + '=' + v).join('\n');
  $('fn-code').value = typeof c.code === 'string' ? c.code : '';
  $('fn-code').placeholder = key === null ? 'export default { fetch: (request) => new Response("hello") }' : c.path ? 'served from ' + c.path : '';
  $('fn-delete').disabled = key === null;
  $('invoke-result').hidden = true;
  $('invoke-note').textContent = '';
  $('invoke-key').textContent = key || '';
  for (const li of $('fn-list').children) li.setAttribute('aria-selected', String(key !== null && li.dataset.key === key));
  if (key) select(key); else select(null);
}

async function openFunction(key) {
  const r = await api('GET', '/functions/' + enc(key));
  if (r.status === 200 && r.data) {
    openEditor(key, r.headers.get('etag'), r.data.config && typeof r.data.config === 'object' ? r.data.config : {});
    return true;
  }
  if (r.status === 404) {
    // A route row of a function deleted since: show its figures all the same.
    select(key);
    return false;
  }
  $('fn-work').hidden = false;
  $('fn-error').textContent = (r.data && r.data.message) || 'could not read ' + key + ' (' + r.status + ')';
  return false;
}

// The config to PUT: the function's other fields as they were (cors, auth, …), the form's over them.
// A number field that is not a number is sent as written, for the API to say what it wants.
function formConfig() {
  const config = Object.assign({}, editing ? editing.config : {});
  for (const name of ['mode', 'memory_mb', 'timeout_ms', 'handler', 'env', 'code']) delete config[name];
  config.runtime = $('fn-runtime').value;
  if ($('fn-mode').value) config.mode = $('fn-mode').value;
  for (const name of INT_FIELDS) {
    const text = $('fn-' + name).value.trim();
    if (text !== '') config[name] = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
  }
  const handler = $('fn-handler').value.trim();
  if (handler) config.handler = handler;
  const env = {};
  let envLines = 0;
  $('fn-env').value.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw { field: 'env', message: 'line ' + (i + 1) + ': write KEY=VALUE (got ' + JSON.stringify(line) + ')' };
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
    envLines++;
  });
  if (envLines > 0) config.env = env;
  const code = $('fn-code').value;
  if (code.trim() !== '') { config.code = code; delete config.path; }
  else if (!(editing && editing.config && editing.config.path)) delete config.path;
  else config.path = editing.config.path;
  return config;
}

async function deploy() {
  clearProblems();
  const key = $('fn-method').value + ':' + $('fn-path').value.trim();
  let config;
  try {
    config = formConfig();
  } catch (err) {
    if (err && err.field) { showFieldProblem(err.field, err.message); setStatus('not deployed', 'bad'); return; }
    throw err;
  }
  const replacing = editing !== null && editing.key === key;
  const extra = replacing ? { 'if-match': editing.etag || '*' } : { 'if-none-match': '*' };
  setStatus('deploying…', 'muted');
  $('fn-deploy').disabled = true;
  let r;
  try {
    r = await api('PUT', '/functions/' + enc(key), config, extra);
  } catch (err) {
    setStatus('not deployed: the gateway did not answer', 'bad');
    return;
  } finally {
    $('fn-deploy').disabled = false;
  }
  const d = r.data || {};
  if (r.status === 200 || r.status === 201 || r.status === 202) {
    editing = { key, etag: r.headers.get('etag'), config: d.config || config };
    $('fn-delete').disabled = false;
    $('invoke-key').textContent = key;
    const s = d.serving || {};
    if (r.status === 202) setStatus('written as version ' + d.version + ', not served: ' + s.state + (s.error ? ' — ' + s.error : ''), 'warn');
    else setStatus('live · version ' + d.version + ' (' + d.change + ')', 'ok');
    $('fn-status').dataset.state = r.status === 202 ? 'pending' : 'live';
    select(key);
    loadFunctions();
    return;
  }
  $('fn-status').dataset.state = 'refused';
  if (r.status === 422) {
    setStatus('not deployed: fix the fields marked', 'bad');
    showProblems(d.problems || [], d.message);
  } else if (r.status === 412) {
    setStatus('not deployed', 'bad');
    $('fn-error').textContent = replacing
      ? 'Someone else changed ' + key + ' since you opened it: ' + (d.message || '') + ' Reload it to see theirs (your edits here are replaced).'
      : 'A function exists at ' + key + ' already. Reload it to edit it.';
    $('fn-reload').hidden = false;
  } else {
    setStatus('not deployed', 'bad');
    $('fn-error').textContent = (d.message || 'the gateway answered ' + r.status);
  }
}

async function removeFunction() {
  if (!editing) return;
  const key = editing.key;
  if (!confirm('Delete ' + key + '? Calls to it will get 404.')) return;
  clearProblems();
  const r = await api('DELETE', '/functions/' + enc(key), undefined, { 'if-match': editing.etag || '*' });
  const d = r.data || {};
  if (r.status === 200 || r.status === 202) {
    editing = null;
    $('fn-work').hidden = true;
    select(null);
    loadFunctions();
    return;
  }
  if (r.status === 412) {
    $('fn-error').textContent = 'Someone else changed ' + key + ' since you opened it; nothing was deleted. Reload it and decide again.';
    $('fn-reload').hidden = false;
  } else $('fn-error').textContent = d.message || 'the gateway answered ' + r.status;
}

// ---- invoke ----

async function invoke() {
  const key = editing ? editing.key : null;
  const note = $('invoke-note');
  if (!key) { note.textContent = 'deploy it first'; note.className = 'bad'; return; }
  const headers = {};
  for (const line of $('invoke-headers-in').value.split('\n')) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) { note.textContent = 'headers: write Name: value (got ' + JSON.stringify(line) + ')'; note.className = 'bad'; return; }
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  const request = { headers };
  const query = $('invoke-query').value.trim().replace(/^\?/, '');
  if (query) request.query = query;
  const body = $('invoke-body-in').value;
  if (body) request.body = body;
  note.textContent = 'calling…';
  note.className = 'muted';
  $('invoke-send').disabled = true;
  let r;
  try {
    r = await api('POST', '/functions/' + enc(key) + '/invoke', request);
  } catch (err) {
    note.textContent = 'the gateway did not answer';
    note.className = 'bad';
    return;
  } finally {
    $('invoke-send').disabled = false;
  }
  if (r.status !== 200 || !r.data) {
    note.textContent = (r.data && r.data.message) || 'the gateway answered ' + r.status;
    note.className = 'bad';
    return;
  }
  note.textContent = '';
  showInvocation(r.data);
}

function showInvocation(d) {
  const status = $('invoke-status');
  status.replaceChildren(badge(String(d.status) + (d.code ? ' ' + d.code : ''), d.status < 400 ? 'ok' : d.status < 500 ? 'warn' : 'bad'));
  status.dataset.status = String(d.status);
  $('invoke-timing').textContent = millis(d.ms) + ' in the gateway · ' + millis(d.fnMs) + ' in the function · ' + (d.cold ? 'cold' : 'warm')
    + (d.worker ? ' · ' + d.worker : '') + (d.truncated ? ' · first MiB shown' : '');
  $('invoke-request-id').textContent = 'request id ' + d.requestId;
  $('invoke-headers').tBodies[0].replaceChildren(...(d.headers || []).map(([name, value]) =>
    el('tr', {}, el('td', { class: 'muted mono', text: name }), el('td', { class: 'mono', text: value }))));
  $('invoke-body').textContent = typeof d.body === 'string' ? d.body : d.bodyBase64 !== undefined ? '(not UTF-8; base64) ' + d.bodyBase64 : '';
  const lines = (d.output || []).map((o) => el('li', { 'data-stream': o.stream, 'data-testid': 'output-line', text: (o.stream === 'stderr' ? '! ' : '') + o.text.replace(/\n$/, '') }));
  $('invoke-output').replaceChildren(...lines);
  $('invoke-output-empty').hidden = lines.length > 0;
  $('invoke-result').hidden = false;
}

${ROUTE_DETAIL_SCRIPT}
// ---- wiring ----

$('fn-new').addEventListener('click', () => openEditor(null, null, null));
$('fn-form').addEventListener('submit', (e) => { e.preventDefault(); deploy(); });
$('fn-delete').addEventListener('click', () => removeFunction());
$('fn-reload').addEventListener('click', () => {
  const key = editing ? editing.key : $('fn-method').value + ':' + $('fn-path').value.trim();
  openFunction(key);
});
$('invoke-form').addEventListener('submit', (e) => { e.preventDefault(); invoke(); });
// Tab in the code editor indents (two spaces); Shift+Tab still leaves it.
$('fn-code').addEventListener('keydown', (e) => {
  if (e.key !== 'Tab' || e.shiftKey || e.ctrlKey || e.altKey || e.metaKey) return;
  e.preventDefault();
  const area = e.target;
  area.setRangeText('  ', area.selectionStart, area.selectionEnd, 'end');
});
$('routes').addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-key]');
  if (tr) openFunction(tr.dataset.key);
});
$('token-form').addEventListener('submit', () => setTimeout(loadFunctions, 0));
loadFunctions();
`;
