// --max-connections: past it, requests are refused with 503 TOO_MANY_CONNECTIONS, Retry-After
// and the connection closed; once clients go, requests are served again.
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { countEstablished } from '../../src/http/connections.js';
import { eventually, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway;
beforeAll(async () => {
  gw = await startGateway(['--max-connections', '20', '--access-log', 'off'], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
});

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** One request on its own connection: the status line, the headers, and whether the server closed it. */
function rawGet(port: number, path: string): Promise<{ head: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ head: data, closed: false });
    }, 2000);
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      resolve({ head: data, closed: true });
    });
    s.on('error', reject);
  });
}

it('refuses requests past --max-connections with 503, Retry-After and close; serves again once clients go', async () => {
  const port = Number(new URL(gw.http).port);
  const held = await Promise.all(Array.from({ length: 30 }, () => open(port)));
  try {
    const refused = await eventually(async () => {
      const r = await rawGet(port, '/hello');
      return r.head.startsWith('HTTP/1.1 503') && r;
    }, 5000, 200);
    expect(refused.head).toMatch(/retry-after: 1\r\n/i);
    expect(refused.head).toContain('"code":"TOO_MANY_CONNECTIONS"');
    expect(refused.closed).toBe(true);
  } finally {
    for (const s of held) s.destroy();
  }
  await sleep(1200); // the count is refreshed every second
  const ok = await eventually(async () => {
    const r = await rawGet(port, '/hello');
    return r.head.startsWith('HTTP/1.1 200') && r;
  }, 5000, 200);
  expect(ok.head).toContain('x-faas-worker');
});

it('counts established sockets on one local port in a /proc/net/tcp table', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
    '   1: 0100007F:1F90 0100007F:C2A4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1',
    '   2: 0100007F:1F90 0100007F:C2A6 06 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1',
    '   3: 0100007F:C2A4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1',
    '   4: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D000 01 00000000:00000000 00:00000000 00000000 0 0 5',
  ].join('\n');
  // Listening (0A), TIME_WAIT (06) and the client's end of a connection (local port C2A4) do not count.
  expect(countEstablished(table, '1F90')).toBe(2);
  expect(countEstablished('header only\n', '1F90')).toBe(0);
});
