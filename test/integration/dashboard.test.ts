// The dashboard at / on the admin port, driven in headless Chromium (Debian's chromium, via
// playwright-core): it goes live over SSE, calls made during the test show up in it, error
// messages reach the page as text only, and it saves the screenshot README.md shows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, sleep, startGateway, type Gateway } from './harness.js';

const SCREENSHOT = 'docs/dashboard.png';
const HELLO_CALLS = 6;

let gw: Gateway;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  gw = await startGateway([], { workers: 2, syncMs: 200 });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('dialog', (d) => {
    pageErrors.push(`dialog opened: ${d.message()}`);
    void d.dismiss();
  });
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
});

/** The text of one field in the first element `selector` matches. */
const field = (selector: string, name: string): Promise<string> =>
  page.locator(`${selector} [data-field="${name}"]`).first().innerText();

describe('dashboard', () => {
  it('is served at / and goes live over /events', async () => {
    const res = await fetch(`${gw.admin}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    await page.goto(`${gw.admin}/`);
    await page.locator('#conn[data-state="live"]').waitFor({ timeout: 10_000 });
    await page.locator('#updated[data-time]').waitFor({ timeout: 5000 }); // a stats event arrived
  });

  it('shows both workers, up, with a score', async () => {
    await expect.poll(() => page.locator('[data-testid="worker-card"]').count(), { timeout: 10_000 }).toBe(2);
    for (let i = 0; i < 2; i++) {
      const id = await page.locator('[data-testid="worker-card"]').nth(i).getAttribute('data-worker');
      const card = `[data-testid="worker-card"][data-worker="${id}"]`;
      await expect.poll(() => field(card, 'score'), { timeout: 10_000 }).toMatch(/^\d+(\.\d+)?$/);
      expect(await page.locator(card).getAttribute('data-available')).toBe('true');
      expect(await field(card, 'pid')).toMatch(/^pid \d+$/);
    }
  });

  it('shows the config sync state', async () => {
    const sync = page.locator('#sync-state');
    await expect.poll(() => sync.getAttribute('data-state')).toBe('ok');
    const text = await sync.innerText();
    expect(text).toMatch(/last sync\s+[\d.]+ s ago/);
    expect(text).toMatch(/last success\s+[\d.]+ s ago/);
    expect(text).toMatch(/routes\s+\d+/);
  });

  it('counts calls made during the test on their route row', async () => {
    for (let i = 0; i < HELLO_CALLS; i++) expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
    const row = '[data-testid="route-row"][data-key="GET:/hello"]';
    await expect.poll(async () => Number(await field(row, 'calls')), { timeout: 5000 }).toBeGreaterThanOrEqual(HELLO_CALLS);
    expect(await page.locator(row).getAttribute('data-state')).toBe('ok');
    expect(await field(row, 'p99')).toMatch(/^[\d.]+ m?s$/);
    // The instance's CPU and peak memory during a call, mean / p99 (a dash where workers have no cgroups).
    expect(await field(row, 'cpu')).toMatch(/^(–|[\d.]+( m?s)? \/ [\d.]+ m?s)$/);
    expect(await field(row, 'mem')).toMatch(/^(–|[\d.]+( [MG]iB)? \/ [\d.]+ [MG]iB)$/);
  });

  it('lists a failed call in recent errors by its request id, its message as text', async () => {
    const res = await deploy(gw, 'GET:/dashboard-throws', { runtime: 'node',
      code: 'export default { fetch() { throw new Error("boom <img src=x onerror=\\"window.__injected=1\\">") } }' });
    expect(res.status).toBe(500);
    const requestId = res.headers.get('x-request-id')!;
    expect(requestId).toBeTruthy();
    const item = page.locator(`[data-testid="recent-error"][data-request-id="${requestId}"]`);
    await item.waitFor({ timeout: 5000 });
    const text = await item.innerText();
    expect(text).toContain('GET:/dashboard-throws');
    expect(text).toContain('FUNCTION_ERROR');
    expect(text).toContain('500');
    expect(await item.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __injected?: number }).__injected)).toBeUndefined();
    const row = '[data-testid="route-row"][data-key="GET:/dashboard-throws"]';
    await expect.poll(async () => Number(await field(row, 'errors')), { timeout: 5000 }).toBeGreaterThanOrEqual(1);
  });

  it('saves the screenshot README.md shows, with no page errors', async () => {
    // A little traffic over a few ticks, so the picture shows calls moving.
    for (let i = 0; i < 20; i++) {
      await Promise.all([fetch(`${gw.http}/hello`), fetch(`${gw.http}/py/hello`)]);
      await sleep(200);
    }
    // The Functions panel open on GET:/hello, invoked once, with its route's detail.
    await page.locator('[data-testid="function-item"][data-key="GET:/hello"]').click();
    await expect.poll(() => page.locator('#fn-path').inputValue(), { timeout: 5000 }).toBe('/hello');
    await page.locator('#invoke-query').fill('name=dashboard');
    await page.locator('#invoke-send').click();
    await page.locator('#invoke-status[data-status="200"]').waitFor({ timeout: 10_000 });
    await sleep(1100); // the next tick draws it
    fs.mkdirSync('docs', { recursive: true });
    await page.locator('body').screenshot({ path: SCREENSHOT }); // 1280 wide, as tall as the content
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(pageErrors).toEqual([]);
  });
});

describe('dashboard with an admin token (--admin-token-file)', () => {
  const TOKEN = 'dashboard-test-token-0123456789';
  let secured: Gateway;
  let tokenPage: Page;

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-dash-token-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
    secured = await startGateway(['--admin-token-file', file], { workers: 1, syncMs: 200 });
    fs.rmSync(dir, { recursive: true, force: true }); // read at start
    tokenPage = await browser.newPage();
    tokenPage.on('pageerror', (err) => pageErrors.push(err.message));
  });
  afterAll(async () => {
    await tokenPage?.close();
    await secured?.stop();
  });

  it('asks for the token, refuses a wrong one, and goes live with the right one, sending it as a header', async () => {
    await tokenPage.goto(`${secured.admin}/`);
    await tokenPage.locator('#conn[data-state="token"]').waitFor({ timeout: 10_000 });
    await tokenPage.locator('#token').fill('not-the-token');
    await tokenPage.locator('#token-form button').click();
    await tokenPage.locator('#token-note', { hasText: 'that token was refused' }).waitFor({ timeout: 5000 });
    const sent: string[] = [];
    tokenPage.on('request', (r) => {
      if (r.url().endsWith('/events')) sent.push(r.headers().authorization ?? '');
    });
    await tokenPage.locator('#token').fill(TOKEN);
    await tokenPage.locator('#token-form button').click();
    await tokenPage.locator('#conn[data-state="live"]').waitFor({ timeout: 10_000 });
    await tokenPage.locator('[data-testid="route-row"][data-key="GET:/hello"]').waitFor({ timeout: 5000 });
    // The Functions panel's API calls carry the token too.
    await tokenPage.locator('[data-testid="function-item"][data-key="GET:/hello"]').waitFor({ timeout: 5000 });
    expect(sent).toContain(`Bearer ${TOKEN}`);
    expect(await tokenPage.context().cookies()).toEqual([]);
    expect(await tokenPage.locator('#token-form').isHidden()).toBe(true);
  });
});
