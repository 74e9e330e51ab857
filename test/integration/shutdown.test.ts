// The gateway's own lifecycle and its overall cap: SIGTERM drains (calls in flight finish, new
// ones are refused, workers and sandboxes stop), SIGKILL leaves no worker or sandbox behind,
// and past --max-in-flight calls get 503 OVERLOADED.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { deploy, eventually, expectNoResidue, hostResidue, sleep, startGateway } from './harness.js';

const SLOW = 'export default { async fetch(r) { await new Promise((ok) => setTimeout(ok, Number(new URL(r.url).searchParams.get("ms")))); return new Response("done") } }';

interface WorkerRow { id: string; pid: number }

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One raw keep-alive connection: send a request, get the raw answer. */
function rawConnection(port: number): Promise<{ ask: (req: string) => Promise<string>; closed: () => boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      let closed = false;
      socket.on('close', () => {
        closed = true;
      });
      socket.on('error', () => {});
      resolve({
        ask: (req) => new Promise((answered) => {
          let text = '';
          const onData = (d: Buffer): void => {
            text += d.toString();
            if (/\r\n\r\n[\s\S]*\}$/.test(text) || /content-length: 0\r\n/i.test(text)) {
              socket.off('data', onData);
              answered(text);
            }
          };
          socket.on('data', onData);
          socket.once('close', () => answered(text));
          socket.write(req);
        }),
        closed: () => closed,
      });
    });
  });
}

describe('SIGTERM', () => {
  it('finishes the calls in flight, refuses new ones, then stops workers and sandboxes', async () => {
    const before = hostResidue();
    const gw = await startGateway([], { workers: 1 });
    try {
      await deploy(gw, 'GET:/slow', { runtime: 'node', code: SLOW });
      const port = Number(new URL(gw.http).port);
      const [worker] = (await (await fetch(`${gw.admin}/workers`)).json()) as WorkerRow[];
      const idle = await rawConnection(port); // opened before the signal, used after it
      const inFlight = fetch(`${gw.http}/slow?ms=1500`);
      await sleep(300);
      const exited = new Promise<number | null>((resolve) => gw.proc.once('exit', (code) => resolve(code)));
      gw.proc.kill('SIGTERM');
      await sleep(200);

      const late = await idle.ask('GET /slow?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(late).toMatch(/^HTTP\/1\.1 503 /);
      expect(late).toMatch(/^retry-after: 1\r$/im);
      expect(late).toContain('"code":"SHUTTING_DOWN"');
      await expect(fetch(`${gw.http}/slow?ms=1`)).rejects.toThrow(); // no new connections

      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('done');
      expect(await exited).toBe(0);
      expect(alive(worker!.pid)).toBe(false);
      await expectNoResidue(before);
      expect(gw.logs()).toContain('"msg":"shutting down"');
    } finally {
      await gw.stop();
    }
  }, 30_000);
});

describe('SIGKILL of the gateway', () => {
  it('leaves no worker and no sandbox behind', async () => {
    const before = hostResidue();
    const gw = await startGateway([], { workers: 2 });
    try {
      await deploy(gw, 'GET:/slow', { runtime: 'node', code: SLOW });
      const pending = fetch(`${gw.http}/slow?ms=5000`).catch(() => undefined);
      const workers = (await (await fetch(`${gw.admin}/workers`)).json()) as WorkerRow[];
      await sleep(300);
      gw.proc.kill('SIGKILL');
      await eventually(async () => workers.every((w) => !alive(w.pid)), 5000);
      await expectNoResidue(before);
      await pending;
    } finally {
      await gw.stop();
    }
  }, 30_000);
});

describe('--max-in-flight', () => {
  it('answers 503 OVERLOADED with Retry-After past the cap, and serves again once calls finish', async () => {
    const gw = await startGateway(['--max-in-flight', '2'], { workers: 1 });
    try {
      await deploy(gw, 'GET:/slow', { runtime: 'node', code: SLOW });
      const running = [fetch(`${gw.http}/slow?ms=1000`), fetch(`${gw.http}/slow?ms=1000`)];
      await sleep(300);
      const over = await fetch(`${gw.http}/slow?ms=1`);
      expect(over.status).toBe(503);
      expect(over.headers.get('retry-after')).toBe('1');
      expect((await over.json()).code).toBe('OVERLOADED');
      expect((await Promise.all(running)).map((r) => r.status)).toEqual([200, 200]);
      expect((await fetch(`${gw.http}/slow?ms=1`)).status).toBe(200);
      // A client that went away gives its place back.
      const gone = net.connect(Number(new URL(gw.http).port), '127.0.0.1');
      gone.write('GET /slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n');
      const other = net.connect(Number(new URL(gw.http).port), '127.0.0.1');
      other.write('GET /slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(200);
      gone.destroy();
      other.destroy();
      await sleep(100);
      expect((await fetch(`${gw.http}/slow?ms=1`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  }, 30_000);
});
