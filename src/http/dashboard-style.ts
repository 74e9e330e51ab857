// The dashboard's style (dashboard.ts assembles the page), the Functions panel's appended.
import { FUNCTIONS_STYLE } from './dashboard-functions-view.js';

export const STYLE = String.raw`
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
