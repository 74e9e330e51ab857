// The gateway as the HTTP proxy in front of functions (README "HTTP as a proxy"): the
// forwarding headers and the client address, with and without --trusted-proxies; HEAD served
// by GET routes; CORS answered at the gateway; the Server and Date headers.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import wabtInit from 'wabt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

/** Answers with the request's headers, so a test can see what the function was given. */
const SHOW_HEADERS = 'export default { async fetch(req) { return Response.json(Object.fromEntries(req.headers)) } }';
/** 1234 bytes, the method it was called with, and a Server header of its own. */
const SIZED = "export default { fetch(r) { return new Response('x'.repeat(1234), { headers: { 'x-method': r.method, server: 'fn-server' } }) } }";
/** Counts its calls; sets an Access-Control-Allow-Origin of its own, which the gateway must replace on a cors route. */
const COUNTED = "let calls = 0; export default { fetch() { calls++; return new Response(String(calls), { headers: { 'access-control-allow-origin': '*' } }) } }";
const APP = 'https://app.example';

let gw: Gateway;
let proxied: Gateway;
let envModule = '';

async function assemble(file: string): Promise<string> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(file, fs.readFileSync(path.join('test/fixtures/wasm', file), 'utf8'));
  return Buffer.from(module.toBinary({}).buffer).toString('base64');
}

/** A WASI module's environment (env.wat), as a map. */
async function moduleEnv(base: string, route: string, headers: Record<string, string>): Promise<Record<string, string>> {
  const text = await (await fetch(`${base}${route}`, { headers })).text();
  return Object.fromEntries(text.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

/**
 * Sends each request on one connection, the next once nothing more has come for 300 ms, and
 * returns every byte that came back: what a HEAD answer has after its headers shows up here.
 */
async function onOneConnection(base: string, requests: string[]): Promise<string> {
  const url = new URL(base);
  const socket = net.connect(Number(url.port), url.hostname);
  let got = '';
  let last = Date.now();
  socket.on('data', (d) => {
    got += d.toString('latin1');
    last = Date.now();
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const request of requests) {
    socket.write(request);
    last = Date.now();
    const sent = got.length;
    const deadline = Date.now() + 10_000;
    while ((got.length === sent || Date.now() - last < 300) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  }
  socket.destroy();
  return got;
}

beforeAll(async () => {
  envModule = await assemble('env.wat');
  [gw, proxied] = await Promise.all([
    startGateway([], { workers: 1 }),
    startGateway(['--trusted-proxies', '127.0.0.1/32,10.0.0.0/8', '--server-header', 'off'], { workers: 1 }),
  ]);
});
afterAll(async () => {
  await Promise.all([gw?.stop(), proxied?.stop()]);
});

describe('forwarding headers', () => {
  const spoofed = { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', 'x-real-ip': '6.6.6.6' };

  it('drops a chain sent by a peer that is not trusted, and sets it from the connection', async () => {
    await deploy(gw, 'GET:/headers', { runtime: 'node', code: SHOW_HEADERS });
    const host = new URL(gw.http).host;
    const seen = await (await fetch(`${gw.http}/headers`, { headers: spoofed })).json();
    expect(seen).toMatchObject({
      'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': host,
      forwarded: `for=127.0.0.1;host="${host}";proto=http`,
    });
    await deploy(gw, 'GET:/env', { runtime: 'wasm', code: envModule });
    expect((await moduleEnv(gw.http, '/env', spoofed)).REMOTE_ADDR).toBe('127.0.0.1');
  });

  it('keeps and appends to a trusted proxy\'s chain; the client is the right-most address that is not trusted', async () => {
    await deploy(proxied, 'GET:/headers', { runtime: 'node', code: SHOW_HEADERS });
    const host = new URL(proxied.http).host;
    const sent = { 'x-forwarded-for': '198.51.100.7, 203.0.113.9, 10.0.0.9', forwarded: 'for=203.0.113.9;proto=https', 'x-forwarded-proto': 'https',
      'x-forwarded-host': 'www.example' };
    const seen = await (await fetch(`${proxied.http}/headers`, { headers: sent })).json();
    expect(seen).toMatchObject({
      'x-forwarded-for': '198.51.100.7, 203.0.113.9, 10.0.0.9, 127.0.0.1', 'x-real-ip': '203.0.113.9', 'x-forwarded-proto': 'https',
      'x-forwarded-host': 'www.example', forwarded: `for=203.0.113.9;proto=https, for=127.0.0.1;host="${host}";proto=http`,
    });
    await deploy(proxied, 'GET:/env', { runtime: 'wasm', code: envModule });
    expect((await moduleEnv(proxied.http, '/env', sent)).REMOTE_ADDR).toBe('203.0.113.9');
    // The same address in each runtime's own shape: ctx.clientIp, request.client_ip, the event's sourceIp.
    await deploy(proxied, 'GET:/ip/node', { runtime: 'node', code: 'export default { fetch(r, env, ctx) { return new Response(ctx.clientIp) } }' });
    await deploy(proxied, 'GET:/ip/python', { runtime: 'python', code: 'def handle(request):\n    return request.client_ip\n' });
    await deploy(proxied, 'GET:/ip/lambda', { runtime: 'python',
      code: 'def lambda_handler(event, context):\n    return {"statusCode": 200, "body": event["requestContext"]["identity"]["sourceIp"]}\n' });
    for (const runtime of ['node', 'python', 'lambda']) {
      expect(await (await fetch(`${proxied.http}/ip/${runtime}`, { headers: sent })).text()).toBe('203.0.113.9');
    }
  });

  it('rate-limits the client behind the trusted proxy, not the proxy', async () => {
    const as = (ip: string): Promise<Response> => fetch(`${proxied.http}/limited`, { headers: { 'x-forwarded-for': ip } });
    await deploy(proxied, 'GET:/limited', { runtime: 'node', code: SHOW_HEADERS, rate_limit: { rps: 0.1, burst: 1 } }); // takes 127.0.0.1's token
    expect((await as('198.51.100.1')).status).toBe(200);
    expect((await as('198.51.100.1')).status).toBe(429);
    expect((await as('198.51.100.2')).status).toBe(200);
  });
});

describe('HEAD', () => {
  it('is served by the GET route: the function sees HEAD, the answer has its length and no body', async () => {
    await deploy(gw, 'GET:/sized', { runtime: 'node', code: SIZED });
    const res = await fetch(`${gw.http}/sized`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-method')).toBe('HEAD');
    expect(res.headers.get('content-length')).toBe('1234');
    const post = await fetch(`${gw.http}/sized`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('keeps the content-length of a function that skips the body for HEAD', async () => {
    await deploy(gw, 'GET:/lazy', { runtime: 'node',
      code: "export default { fetch: (r) => r.method === 'HEAD' ? new Response(null, { headers: { 'content-length': '5000' } }) : new Response('x') }" });
    const res = await fetch(`${gw.http}/lazy`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('5000');
  });

  it('sends no body bytes, for a function\'s answer or the gateway\'s error, and the connection serves on', async () => {
    const host = new URL(gw.http).host;
    const wire = await onOneConnection(gw.http, [`HEAD /sized HTTP/1.1\r\nHost: ${host}\r\n\r\n`, `HEAD /nope HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `GET /sized HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
    const answers = wire.split(/(?=HTTP\/1\.1 \d{3} )/);
    expect(answers.map((a) => a.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 404', 'HTTP/1.1 200']);
    expect(answers[0]).toMatch(/\r\ncontent-length: 1234\r\n/i);
    expect(answers[0]!.endsWith('\r\n\r\n')).toBe(true); // headers only
    expect(answers[1]!.endsWith('\r\n\r\n')).toBe(true);
    expect(answers[2]!.endsWith(`\r\n\r\n${'x'.repeat(1234)}`)).toBe(true);
  });
});

describe('CORS', () => {
  const preflight = (origin: string, base = gw.http, route = '/counted'): Promise<Response> => fetch(`${base}${route}`, {
    method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-token' } });

  it('answers a preflight itself (204, the route\'s cors) without calling the function', async () => {
    const first = await deploy(gw, 'GET:/counted', { runtime: 'node', code: COUNTED, cors: { origins: [APP], max_age: 600, credentials: true } });
    expect(await first.text()).toBe('1');
    const pre = await preflight(APP);
    expect(pre.status).toBe(204);
    expect(Object.fromEntries(pre.headers)).toMatchObject({
      'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-allow-methods': 'GET, HEAD',
      'access-control-allow-headers': 'x-token', 'access-control-max-age': '600', vary: 'Origin, Access-Control-Request-Headers',
    });
    expect(pre.headers.get('x-faas-worker')).toBeNull();
    expect(await pre.text()).toBe('');
    const res = await fetch(`${gw.http}/counted`, { headers: { origin: APP } });
    expect(await res.text()).toBe('2'); // the preflight was no call
  });

  it('adds its headers to the function\'s answer, in place of the function\'s own', async () => {
    const res = await fetch(`${gw.http}/counted`, { headers: { origin: APP } });
    expect(res.headers.get('access-control-allow-origin')).toBe(APP); // one value: the function's "*" is gone
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id');
    expect(res.headers.get('vary')).toBe('Origin');
    const other = await fetch(`${gw.http}/counted`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a preflight from an origin that is not listed, with 403 naming it', async () => {
    const res = await preflight('https://evil.example');
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ statusCode: 403, code: 'CORS_ORIGIN_NOT_ALLOWED',
      message: 'origin "https://evil.example" is not allowed to call /counted (not in the cors origins of GET:/counted)' });
  });

  it('changes nothing on a route without cors, and an OPTIONS route of its own gets its OPTIONS', async () => {
    const res = await preflight(APP, gw.http, '/headers');
    expect(res.status).toBe(405);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    await deploy(gw, 'GET:/own', { runtime: 'node', code: SHOW_HEADERS, cors: { origins: ['*'] } });
    expect((await preflight(APP, gw.http, '/own')).status).toBe(204);
    gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('OPTIONS:/own',
      JSON.stringify({ runtime: 'node', code: "export default { fetch: () => new Response('own options') }" }));
    const own = await eventually(async () => {
      const res = await preflight(APP, gw.http, '/own');
      return res.status !== 204 && res; // the gateway's preflight until the row is synced
    });
    expect(own.status).toBe(200);
    expect(await own.text()).toBe('own options');
  });
});

describe('Server and Date', () => {
  it('says Server: faas by default, in place of the function\'s, with no uWebSockets header, on answers and errors', async () => {
    for (const res of [await fetch(`${gw.http}/sized`), await fetch(`${gw.http}/nope`)]) {
      expect(res.headers.get('server')).toBe('faas');
      expect(res.headers.get('uwebsockets')).toBeNull();
      expect(Math.abs(Date.parse(res.headers.get('date')!) - Date.now())).toBeLessThan(5000);
    }
  });

  it('says nothing of its own with --server-header off: the function\'s Server passes', async () => {
    await deploy(proxied, 'GET:/sized', { runtime: 'node', code: SIZED });
    const res = await fetch(`${proxied.http}/sized`);
    expect(res.headers.get('server')).toBe('fn-server');
    expect(res.headers.get('date')).not.toBeNull();
    const missing = await fetch(`${proxied.http}/nope`);
    expect(missing.headers.get('server')).toBeNull();
    expect(missing.headers.get('uwebsockets')).toBeNull();
  });
});
