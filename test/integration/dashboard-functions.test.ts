// The dashboard's Functions panel in headless Chromium (Debian's chromium, via playwright-core, as
// dashboard.test.ts): write a function in the form, deploy it, invoke it and see its status, body
// and what it printed; a bad memory_mb shown at that field in the API's words with nothing
// written; the route's detail (latency chart, log followed); delete with confirmation. SQL is
// the judge of what was written.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from './harness.js';

const KEY = 'POST:/dash-fn';
const CODE = [
  'export default {',
  '\tasync fetch(request) {',
  '\t\tconst name = await request.text();',
  '\t\tconsole.log("hello from " + name + " <b>bold</b>");',
  '\t\treturn new Response("hi " + name + " " + new URL(request.url).searchParams.get("q"), { status: 201, headers: { "x-dash": "1" } });',
  '\t}',
  '}',
].join('\n');

let gw: Gateway;
let browser: Browser;
let page: Page;
let operator: ReturnType<Gateway['sql']>;
const pageErrors: string[] = [];
const dialogs: string[] = [];
const row = (key: string): { v: string } | undefined => operator.prepare('SELECT v FROM functions WHERE k = ?').get(key) as { v: string } | undefined;

beforeAll(async () => {
  gw = await startGateway([], { workers: 1, syncMs: 60_000 });
  operator = gw.sql();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });
  await page.goto(`${gw.admin}/`);
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: 10_000 });
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

describe('dashboard: functions', () => {
  it('lists the functions the gateway has', async () => {
    await page.locator('[data-testid="function-item"][data-key="GET:/hello"]').waitFor({ timeout: 5000 });
  });

  it('shows a bad memory_mb at that field, in the API\'s words, and writes nothing', async () => {
    await page.locator('#fn-new').click();
    await page.locator('#fn-method').selectOption('POST');
    await page.locator('#fn-path').fill('/dash-fn');
    await page.locator('#fn-code').fill('export default { fetch: () => new Response("x") }');
    await page.locator('#fn-memory_mb').fill('1');
    await page.locator('#fn-deploy').click();
    const field = page.locator('.field[data-field="memory_mb"]');
    await expect.poll(() => field.getAttribute('data-invalid'), { timeout: 5000 }).toBe('true');
    expect(await field.locator('.field-error').innerText()).toBe('v.memory_mb must be an integer between 16 and 16384 (got 1)');
    expect(await page.locator('#fn-status').getAttribute('data-state')).toBe('refused');
    expect(await page.locator('.field[data-field="code"]').getAttribute('data-invalid')).toBeNull();
    expect(row(KEY)).toBeUndefined();
  });

  it('writes a function in the form (tab indents), deploys it live, invokes it and shows status, body, headers, timing and its output', async () => {
    await page.locator('#fn-memory_mb').fill('64');
    const code = page.locator('#fn-code');
    await code.fill('');
    await code.focus();
    // Typed as an operator would: each tab goes into the code as two spaces, not to the next field.
    for (const line of CODE.split('\n')) {
      for (const part of line.split(/(\t)/)) {
        if (part === '\t') await page.keyboard.press('Tab');
        else if (part !== '') await page.keyboard.insertText(part);
      }
      await page.keyboard.press('Enter');
    }
    expect(await code.inputValue()).toBe(`${CODE.replaceAll('\t', '  ')}\n`);
    await page.locator('#fn-env').fill('GREETING=hi\nEMPTY=');
    await page.locator('#fn-deploy').click();
    await page.locator('#fn-status[data-state="live"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#fn-status').innerText()).toMatch(/^live · version \d+ \(created\)$/);
    expect(await page.locator('.field[data-field="memory_mb"]').getAttribute('data-invalid')).toBeNull();
    expect(JSON.parse(row(KEY)!.v)).toEqual({ runtime: 'node', memory_mb: 64, env: { GREETING: 'hi', EMPTY: '' }, code: `${CODE.replaceAll('\t', '  ')}\n` });
    await page.locator('[data-testid="function-item"][data-key="POST:/dash-fn"]').waitFor({ timeout: 5000 });

    await page.locator('#invoke-query').fill('q=7');
    await page.locator('#invoke-headers-in').fill('x-one: 1');
    await page.locator('#invoke-body-in').fill('tester');
    await page.locator('#invoke-send').click();
    await page.locator('#invoke-status[data-status="201"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#invoke-body').innerText()).toBe('hi tester 7');
    expect(await page.locator('#invoke-headers').innerText()).toContain('x-dash');
    expect(await page.locator('#invoke-timing').innerText()).toMatch(/ms in the gateway · [\d.]+ m?s in the function · (cold|warm)/);
    const output = page.locator('[data-testid="output-line"]');
    expect(await output.count()).toBe(1);
    expect(await output.first().innerText()).toBe('hello from tester <b>bold</b>'); // as text, not markup
    expect(await page.locator('#invoke-output b').count()).toBe(0);
  });

  it('shows the route\'s detail: its figures, latency chart and its log, followed', async () => {
    await page.locator('#fn-detail').waitFor({ state: 'visible', timeout: 5000 });
    expect(await page.locator('#detail-key').innerText()).toBe(KEY);
    // A call on the public port shows up in the followed log (its output and its access entry).
    const res = await fetch(`${gw.http}/dash-fn?q=1`, { method: 'POST', body: 'curl' });
    expect(res.status).toBe(201);
    await page.locator('[data-testid="log-line"][data-kind="output"]', { hasText: 'hello from curl' }).waitFor({ timeout: 5000 });
    await page.locator('[data-testid="log-line"][data-kind="access"]').first().waitFor({ timeout: 5000 });
    await expect.poll(async () => Number(await page.locator('#detail-facts [data-field="calls"]').innerText()), { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    await expect.poll(() => page.locator('#detail-p99').getAttribute('d'), { timeout: 5000 }).toMatch(/^M/);
    // A route row opens its function and detail too.
    await page.locator('[data-testid="route-row"][data-key="GET:/hello"]').click();
    await expect.poll(() => page.locator('#detail-key').innerText(), { timeout: 5000 }).toBe('GET:/hello');
    expect(await page.locator('#fn-path').inputValue()).toBe('/hello');
  });

  it('says when someone else changed the function since it was opened, and offers to reload it', async () => {
    await page.locator('[data-testid="function-item"][data-key="POST:/dash-fn"]').click();
    await expect.poll(() => page.locator('#fn-path').inputValue(), { timeout: 5000 }).toBe('/dash-fn');
    operator.prepare("UPDATE functions SET v = json_set(v, '$.timeout_ms', 5000) WHERE k = ?").run(KEY);
    await page.locator('#fn-timeout_ms').fill('1000');
    await page.locator('#fn-deploy').click();
    await page.locator('#fn-reload').waitFor({ state: 'visible', timeout: 5000 });
    expect(await page.locator('#fn-error').innerText()).toContain('Someone else changed POST:/dash-fn since you opened it');
    expect(JSON.parse(row(KEY)!.v).timeout_ms).toBe(5000);
    await page.locator('#fn-reload').click();
    await expect.poll(() => page.locator('#fn-timeout_ms').inputValue(), { timeout: 5000 }).toBe('5000');
  });

  it('deletes with confirmation: the row is gone', async () => {
    await page.locator('#fn-delete').click();
    await page.locator('[data-testid="function-item"][data-key="POST:/dash-fn"]').waitFor({ state: 'detached', timeout: 5000 });
    expect(dialogs).toEqual(['Delete POST:/dash-fn? Calls to it will get 404.']);
    expect(row(KEY)).toBeUndefined();
    expect((await fetch(`${gw.http}/dash-fn`, { method: 'POST' })).status).toBe(404);
    expect(pageErrors).toEqual([]);
  });
});
