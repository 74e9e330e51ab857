// The Functions panel's markup and style (dashboard-functions.ts has its script): the list, the
// form, the invoke form and a route's detail, included in the dashboard's one page.
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
