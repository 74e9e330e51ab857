// Hostile HTTP on raw sockets, where fetch is too polite: ambiguous framing (request smuggling),
// oversized headers, garbage, and clients that go away mid-body or mid-response. The gateway
// must answer what it can parse, never serve a request hidden in another's body, and keep serving.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, startGateway, type Gateway } from './harness.js';

let gw: Gateway;
let port: number;

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
  port = Number(new URL(gw.http).port);
  await deploy(gw, 'GET:/slow', { runtime: 'node', code: 'export default { async fetch() { await new Promise((r) => setTimeout(r, 300)); return new Response("slow") } }' });
});
afterAll(async () => {
  await gw?.stop();
});

interface Exchange {
  /** Everything the gateway sent back. */
  readonly text: string;
  /** Status codes of the responses in it, in order. */
  readonly statuses: number[];
}

/** Writes raw bytes and reads what comes back until the gateway closes or waitMs passes. */
function exchange(raw: string | Buffer, waitMs = 1500): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, statuses: [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1])) });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (d) => {
      text += d.toString('latin1');
    });
    socket.on('close', finish);
    socket.on('error', (err) => (done ? undefined : ['ECONNRESET', 'EPIPE'].includes((err as NodeJS.ErrnoException).code ?? '') ? finish() : reject(err)));
    socket.write(raw);
  });
}

const SMUGGLED = 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n';

describe('framing', () => {
  it('400 and Connection: close for a Content-Length given twice with different values; the bytes after it are not served', async () => {
    const body = `hello${SMUGGLED}`;
    const r = await exchange(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(r.statuses).toEqual([400]);
    expect(r.text).toMatch(/^connection: close\r$/im);
    expect(r.text).toContain('"code":"BAD_REQUEST"');
    expect(r.text).toContain('content-length is given twice with different values');
  });

  it('takes a Content-Length repeated with the same value', async () => {
    const r = await exchange('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 1000);
    expect(r.statuses).toEqual([200]);
    expect(r.text.endsWith('hello')).toBe(true);
  });

  it.each([
    ['both Content-Length and Transfer-Encoding', `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
    ['a Transfer-Encoding other than chunked', `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n${SMUGGLED}`],
    ['more than 100 headers', `GET /hello HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`],
    ['garbage', `HELLO THERE\r\n\r\n${SMUGGLED}`],
  ])('serves nothing on %s (uWS refuses it without an answer)', async (_what, raw) => {
    const r = await exchange(raw);
    expect(r.statuses).toEqual([]);
    expect(r.text).toBe('');
  });
});

describe('limits', () => {
  it('431 and Connection: close for headers over --max-header-bytes; nothing after it is served', async () => {
    const big = `GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
    const r = await exchange(big + SMUGGLED, 1000);
    expect(r.statuses).toEqual([431]);
    expect(r.text).toMatch(/^connection: close\r$/im);
    expect(r.text).toContain('"code":"HEADERS_TOO_LARGE"');
    expect(r.text).toMatch(/over the limit of 16384 bytes/);
    const fine = await fetch(`${gw.http}/hello`, { headers: { 'x-big': 'a'.repeat(10_000) } });
    expect(fine.status).toBe(200);
  });
});

describe('slow clients', () => {
  it('headers or a body trickled a byte at a time are cut off at the idle timeout, and others are served meanwhile', async () => {
    const trickle = (first: string): Promise<number> => new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const opened = Date.now();
      socket.on('error', () => {});
      socket.write(first);
      const drip = setInterval(() => socket.write('x'), 1000);
      socket.on('close', () => {
        clearInterval(drip);
        resolve(Date.now() - opened);
      });
      setTimeout(() => socket.destroy(), 20_000).unref();
    });
    const slowHeaders = trickle('GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const slowBody = trickle('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
    for (const ms of await Promise.all([slowHeaders, slowBody])) {
      expect(ms).toBeGreaterThan(8_000);
      expect(ms).toBeLessThan(15_000); // uWS's HTTP idle timeout is 10 s and is not reset by a trickle
    }
  }, 25_000);
});

describe('clients that go away', () => {
  it('a client gone mid-body or mid-response leaves the gateway serving', async () => {
    for (let i = 0; i < 5; i++) {
      const midBody = net.connect(port, '127.0.0.1');
      midBody.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`);
      const midResponse = net.connect(port, '127.0.0.1');
      midResponse.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => setTimeout(r, 50));
      midBody.destroy();
      midResponse.destroy();
    }
    await new Promise((r) => setTimeout(r, 400)); // the slow calls answer after their clients left
    const after = await fetch(`${gw.http}/hello`);
    expect(after.status).toBe(200);
    expect(gw.proc.exitCode).toBeNull();
  });
});
