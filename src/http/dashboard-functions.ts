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
// It uses the page's helpers ($, el, badge, millis, sparkline, parseEvent, token, askToken, …).

export const FUNCTIONS_STYLE = String.raw`
#functions-panel { grid-column: 1 / -1; }
#functions-panel h2 { display: flex; gap: 10px; align-items: center; }
.fn-layout { display: grid; gap: 16px; grid-template-columns: minmax(180px, 240px) minmax(0, 1fr); }
@media (max-width: 1000px) { .fn-layout { grid-template-columns: minmax(0, 1fr); } }
#fn-list { list-style: none; margin: 0; padding: 0; max-height: 640px; overflow-y: auto; }
#fn-list li { display: flex; justify-content: space-between; gap: 8px; padding: 5px 8px; border-bottom: 1px solid var(--line); cursor: pointer; }
#fn-list li[aria-selected="true"] { background: var(--bg); font-weight: 600; }
#fn-list li span:first-child { overflow: hidden; text-overflow: ellipsis; }
button.act { font: inherit; padding: 3px 12px; border: 1px solid var(--line); border-radius: 4px; background: var(--panel); color: var(--fg); cursor: pointer; text-transform: none; letter-spacing: 0; }
button.act.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.act.danger { color: var(--bad); border-color: var(--bad); }
button.act:disabled { opacity: .5; cursor: default; }
.fn-work { display: grid; gap: 16px; grid-template-columns: minmax(0, 3fr) minmax(320px, 2fr); min-width: 0; }
@media (max-width: 1200px) { .fn-work { grid-template-columns: minmax(0, 1fr); } }
#fn-work[hidden] { display: none; }
.fn-work > div { min-width: 0; display: grid; gap: 14px; align-content: start; }
.fields { display: grid; gap: 8px 12px; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
.field { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); min-width: 0; }
.field.wide { grid-column: 1 / -1; }
.field input, .field select, .field textarea, #invoke-form input, #invoke-form textarea {
  font: inherit; font-size: 13px; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 3px 6px; width: 100%;
}
.field textarea, #invoke-form textarea, textarea.code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 13px; }
textarea.code { min-height: 260px; tab-size: 2; white-space: pre; resize: vertical; }
.field[data-invalid="true"] input, .field[data-invalid="true"] select, .field[data-invalid="true"] textarea { border-color: var(--bad); }
.field-error { color: var(--bad); font-size: 12px; overflow-wrap: anywhere; }
.field-error:empty { display: none; }
.buttons { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.notice { border-radius: 4px; padding: 4px 8px; overflow-wrap: anywhere; }
.notice:empty { display: none; }
.notice.bad { background: var(--bad-bg); }
#fn-problems { margin: 4px 0 0; padding-left: 18px; }
#fn-problems:empty { display: none; }
.sub { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; margin: 0 0 6px; }
.sub .key, .sub #detail-log-state { text-transform: none; letter-spacing: 0; color: var(--fg); }
#invoke-form { display: grid; gap: 6px; }
#invoke-result[hidden] { display: none; }
#invoke-result pre, #fn-logs { margin: 0; padding: 6px 8px; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; max-height: 260px; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; }
#invoke-headers { font-size: 12px; }
#invoke-headers td { padding: 2px 6px; white-space: normal; overflow-wrap: anywhere; }
#invoke-output { list-style: none; margin: 0; padding: 0; }
#invoke-output li, #fn-logs li { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
#invoke-output li[data-stream="stderr"], #fn-logs li[data-kind="error"] { color: var(--bad); }
#fn-logs { list-style: none; min-height: 60px; }
#fn-detail[hidden] { display: none; }
.latency svg { display: block; width: 100%; height: 80px; border-bottom: 1px solid var(--line); }
.latency path { fill: none; stroke-width: 1.5; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.latency path.p50 { stroke: var(--accent); }
.latency path.p99 { stroke: var(--warn); }
.legend { display: flex; gap: 14px; font-size: 12px; }
.legend .p50 { color: var(--accent); } .legend .p99 { color: var(--warn); }
.routes tbody tr[data-key] { cursor: pointer; }
.routes tbody tr[aria-selected="true"] td { background: var(--bg); }
`;

export const FUNCTIONS_HTML = String.raw`
  <section id="functions-panel">
    <h2>Functions <button type="button" class="act" id="fn-new">New function</button></h2>
    <div class="fn-layout">
      <div>
        <ul id="fn-list" aria-label="functions"></ul>
        <div id="fn-list-note" class="empty-note">loading…</div>
      </div>
      <div id="fn-work" class="fn-work" hidden>
        <div>
          <form id="fn-form" novalidate autocomplete="off">
            <div class="fields">
              <label class="field" data-field="method"><span>method</span>
                <select id="fn-method" name="method"><option>GET</option><option>POST</option><option>PUT</option><option>PATCH</option><option>DELETE</option><option>HEAD</option><option>OPTIONS</option></select>
                <small class="field-error"></small></label>
              <label class="field" data-field="path" style="grid-column: span 2"><span>path</span>
                <input id="fn-path" name="path" placeholder="/hello" spellcheck="false"><small class="field-error"></small></label>
              <label class="field" data-field="runtime"><span>runtime</span>
                <select id="fn-runtime" name="runtime"><option>node</option><option>python</option><option>wasm</option></select><small class="field-error"></small></label>
              <label class="field" data-field="mode"><span>mode</span>
                <select id="fn-mode" name="mode"><option value="">default (process)</option><option>process</option><option>container</option><option>thread</option></select><small class="field-error"></small></label>
              <label class="field" data-field="memory_mb"><span>memory_mb</span>
                <input id="fn-memory_mb" name="memory_mb" inputmode="numeric" placeholder="128"><small class="field-error"></small></label>
              <label class="field" data-field="timeout_ms"><span>timeout_ms</span>
                <input id="fn-timeout_ms" name="timeout_ms" inputmode="numeric" placeholder="30000"><small class="field-error"></small></label>
              <label class="field" data-field="handler"><span>handler</span>
                <input id="fn-handler" name="handler" placeholder="default" spellcheck="false"><small class="field-error"></small></label>
              <label class="field wide" data-field="env"><span>env (KEY=VALUE, one a line)</span>
                <textarea id="fn-env" name="env" rows="2" spellcheck="false"></textarea><small class="field-error"></small></label>
              <label class="field wide" data-field="code"><span>code</span>
                <textarea id="fn-code" name="code" class="code" spellcheck="false"></textarea><small class="field-error"></small></label>
            </div>
            <div class="buttons" style="margin-top: 8px">
              <button type="submit" class="act primary" id="fn-deploy">Deploy</button>
              <button type="button" class="act danger" id="fn-delete">Delete</button>
              <span id="fn-status" data-testid="deploy-status"></span>
              <button type="button" class="act" id="fn-reload" hidden>Reload it</button>
            </div>
            <div id="fn-error" class="notice bad" data-testid="general-error"></div>
            <ul id="fn-problems" class="bad"></ul>
          </form>
        </div>
        <div>
          <div>
            <div class="sub">Invoke <span id="invoke-key" class="key"></span></div>
            <form id="invoke-form" novalidate autocomplete="off">
              <input id="invoke-query" placeholder="query: a=1&b=2" spellcheck="false" aria-label="query">
              <textarea id="invoke-headers-in" rows="2" placeholder="headers, one a line: Name: value" spellcheck="false" aria-label="headers"></textarea>
              <textarea id="invoke-body-in" rows="3" placeholder="body" spellcheck="false" aria-label="body"></textarea>
              <div class="buttons"><button type="submit" class="act primary" id="invoke-send">Invoke</button><span id="invoke-note"></span></div>
            </form>
            <div id="invoke-result" hidden>
              <div class="buttons"><span id="invoke-status"></span><span id="invoke-timing" class="muted"></span></div>
              <div class="muted mono" id="invoke-request-id"></div>
              <table id="invoke-headers"><tbody></tbody></table>
              <pre id="invoke-body"></pre>
              <div class="sub" style="margin-top: 6px">output</div>
              <ol id="invoke-output"></ol>
              <div id="invoke-output-empty" class="empty-note">nothing printed</div>
            </div>
          </div>
          <div id="fn-detail" hidden>
            <div class="sub">Route <span id="detail-key" class="key"></span></div>
            <dl class="facts" id="detail-facts"></dl>
            <div class="latency">
              <div class="legend"><span class="p50">p50</span><span class="p99">p99</span><span class="muted">top <span id="detail-top">–</span> · last <span id="detail-span">–</span></span></div>
              <svg viewBox="0 0 100 32" preserveAspectRatio="none" aria-label="latency over the last minutes"><path class="p50" id="detail-p50"></path><path class="p99" id="detail-p99"></path></svg>
            </div>
            <div class="sub" style="margin-top: 8px">Recent errors</div>
            <ol id="detail-errors" class="errors"></ol>
            <div id="detail-errors-empty" class="empty-note">none</div>
            <div class="sub" style="margin-top: 8px">Log <span id="detail-log-state" class="muted"></span></div>
            <ol id="fn-logs"></ol>
          </div>
        </div>
      </div>
    </div>
  </section>
`;

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

// ---- per-route detail: latency chart, recent errors, the log followed ----

function select(key) {
  for (const tr of $('routes').children) if (tr.dataset.key) tr.setAttribute('aria-selected', String(tr.dataset.key === key));
  if (key === selected) return;
  selected = key;
  if (follow) { follow.abort(); follow = null; }
  $('fn-logs').replaceChildren();
  $('fn-detail').hidden = key === null;
  if (key === null) return;
  $('fn-work').hidden = false;
  $('detail-key').textContent = key;
  if (lastStats) renderDetail(lastStats);
  followLog(key);
}

async function followLog(key) {
  const ctl = new AbortController();
  follow = ctl;
  const state = $('detail-log-state');
  state.textContent = 'connecting';
  let after = 0;
  while (!ctl.signal.aborted) {
    try {
      const res = await fetch(API + '/logs?follow=1&route=' + enc(key) + '&after=' + after, { headers: authHeaders({ accept: 'text/event-stream' }), cache: 'no-store', signal: ctl.signal });
      if (!res.ok || !res.body) { state.textContent = 'unavailable (' + res.status + ')'; return; }
      state.textContent = '· following';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const events = buffered.split(/\r?\n\r?\n/);
        buffered = events.pop();
        for (const block of events) {
          const entry = logEvent(block);
          if (!entry) continue;
          if (entry.kind !== 'access' && entry.seq > after) after = entry.seq;
          appendLog(entry);
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
    }
    state.textContent = '· reconnecting';
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function logEvent(block) {
  const event = parseEvent(block);
  if (!event || event.name !== 'log') return null;
  try { return JSON.parse(event.data); } catch (err) { return null; }
}

function appendLog(e) {
  const text = e.kind === 'output' ? (e.stream === 'stderr' ? '! ' : '') + String(e.text || '').replace(/\n$/, '')
    : e.kind === 'access' ? e.msg + ' · ' + millis(e.ms) + (e.cold ? ' · cold' : '')
    : String(e.status || '') + ' ' + (e.code || '') + ' ' + e.msg;
  const list = $('fn-logs');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(el('li', { 'data-kind': e.kind, 'data-request-id': e.requestId || '', 'data-testid': 'log-line',
    title: (e.requestId || '') + (e.worker ? ' on ' + e.worker : '') }, el('span', { class: 'muted', text: clock(e.time) + ' ' }), text));
  while (list.children.length > MAX_LOG_LINES) list.firstChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function functionsOnStats(stats) {
  lastStats = stats;
  const now = isNum(stats.time) ? stats.time : Date.now();
  const live = new Set();
  for (const r of stats.routes || []) {
    live.add(r.key);
    let points = routeHistory.get(r.key);
    if (!points) routeHistory.set(r.key, points = []);
    const last = points[points.length - 1];
    if (!last || last.t < now) points.push({ t: now, p50: r.p50Ms, p99: r.p99Ms });
    let drop = Math.max(0, points.length - MAX_POINTS);
    while (drop < points.length && points[drop].t < now - WINDOW_MS) drop++;
    if (drop > 0) points.splice(0, drop);
  }
  for (const key of routeHistory.keys()) if (!live.has(key)) routeHistory.delete(key);
  const keys = [...live].sort().join('\n');
  if (keys !== routeKeys) {
    if (routeKeys !== '') loadFunctions(); // a function written elsewhere (SQL, faas deploy, the API)
    routeKeys = keys;
  }
  for (const tr of $('routes').children) if (tr.dataset.key) tr.setAttribute('aria-selected', String(tr.dataset.key === selected));
  if (selected) renderDetail(stats);
}

function renderDetail(stats) {
  const key = selected;
  const r = (stats.routes || []).find((x) => x.key === key) || {};
  const fact = (label, value, name) => el('div', {}, el('dt', { text: label }), el('dd', { 'data-field': name, text: value }));
  $('detail-facts').replaceChildren(fact('state', r.state || 'not served', 'state'), fact('rps', fixed(r.rps, 1), 'rps'), fact('p50', millis(r.p50Ms), 'p50'),
    fact('p99', millis(r.p99Ms), 'p99'), fact('errors', count(r.errors), 'errors'), fact('calls', count(r.calls), 'calls'));
  const now = isNum(stats.time) ? stats.time : Date.now();
  const points = routeHistory.get(key) || [];
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, points.length > 0 ? now - points[0].t : 0));
  const top = Math.max(1, ...points.map((p) => (isNum(p.p99) ? p.p99 : isNum(p.p50) ? p.p50 : 0)));
  $('detail-p50').setAttribute('d', sparkline(points, { key: 'p50', max: top }, now - span, span));
  $('detail-p99').setAttribute('d', sparkline(points, { key: 'p99', max: top }, now - span, span));
  $('detail-top').textContent = millis(top);
  $('detail-span').textContent = duration(span);
  const errors = (stats.recentErrors || []).filter((e) => e.route === key).slice(0, 20).map((e) =>
    el('li', { 'data-testid': 'detail-error', 'data-request-id': e.requestId || '' },
      el('div', { class: 'line' }, el('span', { class: 'muted', text: clock(e.time) }), badge(String(e.status ?? DASH), 'bad'),
        el('span', { class: 'mono', text: e.code || DASH }), el('span', { class: 'muted mono', text: e.requestId || DASH })),
      el('div', { class: 'message', text: e.message || '' })));
  $('detail-errors').replaceChildren(...errors);
  $('detail-errors-empty').hidden = errors.length > 0;
}

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
