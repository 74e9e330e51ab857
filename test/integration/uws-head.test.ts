// Pins the uWS behaviour end-answer.ts works around: in this build (uWebSockets.js
// 20.30.0-unofficial) endWithoutBody(length) sends the HEAD answer's headers but never marks the
// answer done, so the next request on that connection is never answered (uWS closes it instead).
// endAnswer writes content-length itself and calls endWithoutBody() with no length.
//
// When the first test fails after a uWS upgrade, endWithoutBody(length) completes the answer:
// endAnswer can pass it the length (and its close flag, instead of `connection: close`), and this
// file can go.
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { endAnswer } from '../../src/http/end-answer.js';
import { listen, uws, type HttpResponse, type us_listen_socket } from '../../src/http/uws.js';

const BODY = 'hello';
let listening: us_listen_socket;
let port: number;

beforeAll(async () => {
  const app = uws().App();
  // HEAD /uws: uWS's own endWithoutBody(length); HEAD /gateway: end-answer.ts's; GET: the body.
  const answers: Record<string, (res: HttpResponse) => void> = {
    '/uws': (res) => {
      res.endWithoutBody(Buffer.byteLength(BODY));
    },
    '/gateway': (res) => endAnswer(res, BODY, true),
  };
  app.head('/*', (res, req) => {
    // Needed: uWS does not count endWithoutBody(length) as an answer, and a handler that returns
    // with neither kills the process ("Returning from a request handler without responding…").
    res.onAborted(() => {});
    answers[req.getUrl()]!(res);
  });
  app.get('/*', (res) => {
    res.end(BODY);
  });
  ({ socket: listening, port } = await listen(app, '127.0.0.1', 0));
});
afterAll(() => {
  if (listening) uws().us_listen_socket_close(listening);
});

/**
 * A HEAD of `path`, then a GET on the same connection once the HEAD's headers are in: every byte
 * that came back within 1 s of each, and whether the server ended the connection.
 */
async function headThenGet(path: string): Promise<{ wire: string; ended: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  let wire = '';
  let ended = false;
  socket.on('data', (d: Buffer) => (wire += d.toString('latin1')));
  socket.on('end', () => (ended = true));
  await new Promise((resolve) => socket.once('connect', resolve));
  const until = async (done: () => boolean): Promise<void> => {
    const deadline = Date.now() + 1000;
    while (!done() && !ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };
  socket.write(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await until(() => wire.includes('\r\n\r\n'));
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => wire.endsWith(`\r\n\r\n${BODY}`));
  socket.destroy();
  return { wire, ended };
}

it('uWS: endWithoutBody(length) sends the headers but never completes the answer: the next request goes unanswered', async () => {
  const { wire } = await headThenGet('/uws');
  expect(wire).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(wire).toMatch(/\r\ncontent-length: 5\r\n/i);
  const upgraded = 'uWS now completes endWithoutBody(length): end-answer.ts can use it (see this file\'s header)';
  expect(wire.match(/HTTP\/1\.1 /g), upgraded).toHaveLength(1);
  expect(wire, upgraded).not.toContain(BODY);
});

it('endAnswer (content-length by hand, endWithoutBody()): the HEAD answer completes and the connection serves on', async () => {
  const { wire, ended } = await headThenGet('/gateway');
  const answers = wire.split(/(?=HTTP\/1\.1 \d{3} )/);
  expect(answers).toHaveLength(2);
  expect(answers[0]).toMatch(/\r\ncontent-length: 5\r\n/i);
  expect(answers[0]!.endsWith('\r\n\r\n')).toBe(true); // headers only
  expect(answers[1]!.endsWith(`\r\n\r\n${BODY}`)).toBe(true);
  expect(ended).toBe(false);
});
