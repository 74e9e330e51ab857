// A worker keeps its instances within its memory budget (FAAS_MEMORY_BUDGET_MB): the least
// recently used idle instance makes room; instances in use are never stopped for it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

beforeAll(async () => {
  gw = await startGateway([], { workers: 1, env: { FAAS_MEMORY_BUDGET_MB: '200' } });
});
afterAll(async () => {
  await gw?.stop();
});

const node = (body: string) => ({ runtime: 'node', memory_mb: 128, code: `export default { async fetch() { ${body} } }` });

it('evicts the least recently used idle instance, and refuses when instances in use hold the budget', async () => {
  expect((await deploy(gw, 'GET:/a', node('return new Response("a")'))).status).toBe(200);
  expect((await deploy(gw, 'GET:/b', node('return new Response("b")'))).status).toBe(200);
  expect(gw.logs()).toMatch(/"msg":"instance evicted to stay within the memory budget","instance":"GET:\/a#/);

  await deploy(gw, 'GET:/slow', node('await new Promise((ok) => setTimeout(ok, Number(globalThis.wait ?? 1))); globalThis.wait = 1500; return new Response("slow")'));
  const busy = fetch(`${gw.http}/slow`); // holds 128 of the 200 MiB while it runs
  await eventually(async () => (await (await fetch(`${gw.admin}/workers`)).json())[0].inFlight > 0);
  const refused = await fetch(`${gw.http}/a`);
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('1');
  const body = await refused.json();
  expect(body.code).toBe('FUNCTION_AT_CAPACITY');
  expect(body.message).toContain("memory budget of 200 MiB is held by instances in use");
  expect((await busy).status).toBe(200);
  expect((await fetch(`${gw.http}/a`)).status).toBe(200);
});
