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
  it('headers trickled are cut off at the idle timeout; a body trickled gets 408 at --body-timeout-ms; others are served meanwhile', async () => {
    const trickle = (first: string): Promise<{ ms: number; answeredMs: number; answer: string }> => new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const opened = Date.now();
      let answer = '';
      let answeredMs = -1;
      socket.on('error', () => {});
      socket.on('data', (c: Buffer) => {
        if (answeredMs < 0) answeredMs = Date.now() - opened;
        answer += c.toString();
      });
      socket.write(first);
      const drip = setInterval(() => socket.write('x'), 1000);
      socket.on('close', () => {
        clearInterval(drip);
        resolve({ ms: Date.now() - opened, answeredMs, answer });
      });
      setTimeout(() => socket.destroy(), 25_000).unref();
    });
    const slowHeaders = trickle('GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const slowBody = trickle('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
    const [headers, body] = await Promise.all([slowHeaders, slowBody]);
    // uWS's HTTP idle timeout is 10 s on a 4 s tick, is not reset by a trickle, and answers nothing.
    expect(headers.ms).toBeGreaterThan(7_500);
    expect(headers.ms).toBeLessThan(15_000);
    expect(headers.answer).toBe('');
    // The body's deadline is the gateway's own (5 s by default), answered before uWS would cut
    // it; the trickle goes on being read (so the client is not reset) until uWS closes it.
    expect(body.answeredMs).toBeGreaterThan(4_900);
    expect(body.answeredMs).toBeLessThan(6_500);
    expect(body.answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(body.answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(body.answer).toContain('"code":"REQUEST_TIMEOUT"');
    expect(body.ms).toBeLessThan(25_000);
  }, 30_000);

  it('a body that never comes gets 408 at --body-timeout-ms, and the connection is closed', async () => {
    const quick = await startGateway(['--body-timeout-ms', '500', '--access-log', 'off'], { workers: 1 });
    try {
      const answer = await new Promise<{ ms: number; text: string }>((resolve) => {
        const socket = net.connect(Number(new URL(quick.http).port), '127.0.0.1');
        const opened = Date.now();
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('close', () => resolve({ ms: Date.now() - opened, text }));
        socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
      });
      expect(answer.ms).toBeGreaterThanOrEqual(450);
      expect(answer.ms).toBeLessThan(12_000); // answered at 0.5 s, closed by uWS's idle timeout
      expect(answer.text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      // A body that arrives in time on the same gateway is served.
      const ok = await fetch(`${quick.http}/echo`, { method: 'POST', body: 'in time' });
      expect(ok.status).toBe(200);
    } finally {
      await quick.stop();
    }
  }, 20_000);
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
