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
// This file assembles the page: its style (dashboard-style.ts), its script (dashboard-script.ts),
// and the Functions panel (write, deploy, invoke, delete; a route's latency, errors and log:
// dashboard-functions.ts, its markup dashboard-functions-view.ts).
import { FUNCTIONS_HTML } from './dashboard-functions-view.js';
import { SCRIPT } from './dashboard-script.js';
import { STYLE } from './dashboard-style.js';

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
