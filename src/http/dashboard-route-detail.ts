// The Functions panel's per-route detail (dashboard-functions.ts includes it where it stood):
// for the function or route row clicked, its p50/p99 over the minutes the page has been open (from
// the `stats` events), its recent errors, and its log followed (GET /api/v1/logs?follow=1&route=KEY,
// read with fetch so the token can go as a header). Browser code in a string: no build step.
export const ROUTE_DETAIL_SCRIPT = String.raw`// ---- per-route detail: latency chart, recent errors, the log followed ----

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
      await readEvents(res, (block) => {
        const entry = logEvent(block);
        if (!entry) return;
        if (entry.kind !== 'access' && entry.seq > after) after = entry.seq;
        appendLog(entry);
      });
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
`;
