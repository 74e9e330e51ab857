// The node host's call code (workers/runtime/node-calls.mjs), run in-process: what a
// Workers-style function gets back to the client for every shape of Response body. The host
// reads a body made from a string or bytes without its stream; everything else (and a body the
// function already used) must still come out as the WHATWG API says.
import { describe, expect, it } from 'vitest';

interface Answer { status?: number; headers?: string[]; body?: Buffer; stream?: ReadableStream<Uint8Array>; invalid?: string }
interface NodeCalls {
  runFetch(fn: (req: Request) => unknown, self: unknown, call: object, body: Buffer, env: object): Promise<Answer>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  runLambda(fn: (...args: any[]) => unknown, call: object, body: Buffer, functionName: string, memoryMb: string): Promise<Answer>;
  encodeHostFrame(meta: object, body?: Buffer): Buffer[];
}
// A path in a variable: tsc does not type the plain-JS module, and needs no declaration for it.
const modulePath = new URL('../../workers/runtime/node-calls.mjs', import.meta.url).href;
const calls = (await import(modulePath)) as NodeCalls;

const call = { id: 1, requestId: 'r1', method: 'POST', path: '/t', query: 'a=1', headers: ['host', 'example.test', 'x-a', 'b'], deadlineMs: 0 };

/** The answer, its body whole: a body made from a stream comes back as the stream, to be sent as it is produced. */
async function answer(make: (req: Request) => Response | Promise<Response>): Promise<Answer> {
  const out = await calls.runFetch(make, undefined, call, Buffer.from('request body'), {});
  return out.stream ? { ...out, body: Buffer.from(await new Response(out.stream).arrayBuffer()) } : out;
}

describe('node-calls runFetch', () => {
  it('gives the function the request as sent', async () => {
    let seen: { url: string; method: string; header: string | null; text: string } | undefined;
    await answer(async (req) => {
      seen = { url: req.url, method: req.method, header: req.headers.get('x-a'), text: await req.text() };
      return new Response('ok');
    });
    expect(seen).toEqual({ url: 'http://example.test/t?a=1', method: 'POST', header: 'b', text: 'request body' });
  });

  it.each([
    ['a string', () => new Response('héllo'), 'héllo'],
    ['bytes', () => new Response(new TextEncoder().encode('bytes')), 'bytes'],
    ['Response.json', () => Response.json({ a: 1 }), '{"a":1}'],
    ['a Blob', () => new Response(new Blob(['blob'])), 'blob'],
    ['a stream', () => new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close(); } })), 'streamed'],
    ['no body', () => new Response(null, { status: 204 }), ''],
    ['URLSearchParams', () => new Response(new URLSearchParams({ q: 'x y' })), 'q=x+y'],
  ])('returns the body of a Response made from %s', async (_what, make, text) => {
    const out = await answer(make);
    expect(out.body!.toString()).toBe(text);
  });

  it('sends the bytes as they were when the Response was made, though the function reuses its buffer', async () => {
    const shared = new TextEncoder().encode('first');
    const out = await answer(() => {
      const res = new Response(shared);
      shared.set(new TextEncoder().encode('later'));
      return res;
    });
    expect(out.body!.toString()).toBe('first');
  });

  it('refuses a Response whose body the function already read, as arrayBuffer() would', async () => {
    await expect(answer(async () => {
      const res = new Response('once');
      await res.text();
      return res;
    })).rejects.toThrow(TypeError);
  });

  it('passes status and headers, set-cookie one per line', async () => {
    const out = await answer(() => {
      const h = new Headers({ 'content-type': 'text/plain' });
      h.append('set-cookie', 'a=1');
      h.append('set-cookie', 'b=2');
      return new Response('x', { status: 201, headers: h });
    });
    expect(out.status).toBe(201);
    expect(out.headers).toEqual(['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2']);
  });

  it('says what was wrong when fetch() returns something else', async () => {
    const out = await calls.runFetch(() => ({ status: 200 }), undefined, call, Buffer.alloc(0), {});
    expect(out.invalid).toBe('fetch() must return a Response (got object)');
  });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const lambdaCall = {
  id: 2, requestId: 'req-1', method: 'POST', path: '/items', query: 'a=1&a=2&b=&__proto__=x&constructor=y',
  headers: ['host', 'api.example.test', 'user-agent', 'curl/8', 'x-dup', '1', 'x-dup', '2', 'cookie', 'a=1; b=2', 'content-type', 'text/plain'],
  deadlineMs: Date.now() + 10_000, clientIp: '203.0.113.7',
};
const plainCall = { ...lambdaCall, query: 'a=1' };

/** The event and context a handler sees for `call` and `body`. */
async function seen(call: object, body = Buffer.alloc(0)): Promise<{ event: Json; context: Json }> {
  let got: { event: Json; context: Json } | undefined;
  await calls.runLambda((event: Json, context: Json) => {
    got = { event, context };
    return { statusCode: 204 };
  }, call, body, 'POST:/items', '256');
  return got!;
}

const CLF = /^\d\d\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:\d\d:\d\d:\d\d \+0000$/;

describe('node-calls runLambda: the REST API event (v1)', () => {
  it('has every field API Gateway sends, repeated headers and parameters single (last) and multi', async () => {
    const { event } = await seen(lambdaCall, Buffer.from('hi'));
    expect(JSON.parse(JSON.stringify(event))).toEqual({
      resource: '/items', path: '/items', httpMethod: 'POST',
      headers: { 'host': 'api.example.test', 'user-agent': 'curl/8', 'x-dup': '2', 'cookie': 'a=1; b=2', 'content-type': 'text/plain' },
      multiValueHeaders: { 'host': ['api.example.test'], 'user-agent': ['curl/8'], 'x-dup': ['1', '2'], 'cookie': ['a=1; b=2'], 'content-type': ['text/plain'] },
      queryStringParameters: { a: '2', b: '', ['__proto__']: 'x', constructor: 'y' },
      multiValueQueryStringParameters: { a: ['1', '2'], b: [''], ['__proto__']: ['x'], constructor: ['y'] },
      pathParameters: null, stageVariables: null,
      requestContext: {
        resourcePath: '/items', httpMethod: 'POST', path: '/items', stage: '$default', requestId: 'req-1',
        requestTime: expect.stringMatching(CLF), requestTimeEpoch: expect.any(Number), protocol: 'HTTP/1.1',
        domainName: 'api.example.test', identity: { sourceIp: '203.0.113.7', userAgent: 'curl/8' },
      },
      body: 'hi', isBase64Encoded: false,
    });
    expect(Object.getPrototypeOf(event.queryStringParameters)).toBe(Object.prototype); // `__proto__=x` stayed data
    expect(Math.abs(event.requestContext.requestTimeEpoch - Date.now())).toBeLessThan(5000);
  });

  it('finds a header under the case a client sent, as Lambda code reads it', async () => {
    const { event } = await seen(lambdaCall);
    expect(event.headers['Content-Type']).toBe('text/plain');
    expect(event.multiValueHeaders['X-Dup']).toEqual(['1', '2']);
    expect('User-Agent' in event.headers).toBe(true);
    expect(event.headers.hasOwnProperty('host')).toBe(true);
    expect(Object.keys(event.headers)).toContain('content-type');
  });

  it('has null body, parameters, path parameters and stage variables for a bare GET', async () => {
    const { event } = await seen({ ...lambdaCall, method: 'GET', query: '', headers: ['host', 'h'] });
    expect(event).toMatchObject({ body: null, isBase64Encoded: false, queryStringParameters: null, multiValueQueryStringParameters: null, pathParameters: null, stageVariables: null });
  });

  it('sends a binary body, or text that is not UTF-8, base64 with isBase64Encoded', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
    const typed = (ct: string): object => ({ ...lambdaCall, headers: ['host', 'h', 'content-type', ct] });
    for (const [call, body] of [[typed('image/png'), png], [typed('text/plain'), png], [{ ...lambdaCall, headers: [] }, png]] as const) {
      const { event } = await seen(call, body);
      expect(event.isBase64Encoded).toBe(true);
      expect(Buffer.from(event.body, 'base64')).toEqual(png);
    }
    expect((await seen(typed('application/vnd.api+json'), Buffer.from('{"é":1}'))).event).toMatchObject({ body: '{"é":1}', isBase64Encoded: false });
  });

  it('takes sourceIp from the gateway, else the last X-Forwarded-For hop, else null', async () => {
    const noIp = { ...lambdaCall, clientIp: undefined };
    expect((await seen(noIp)).event.requestContext.identity.sourceIp).toBe(null);
    const forwarded = { ...noIp, headers: ['x-forwarded-for', '198.51.100.1, 192.0.2.9'] };
    expect((await seen(forwarded)).event.requestContext.identity.sourceIp).toBe('192.0.2.9');
  });
});

describe('node-calls runLambda: the HTTP API payload (v2)', () => {
  it('has every field, repeated values comma-joined, cookies apart', async () => {
    const { event } = await seen({ ...lambdaCall, event: 'v2' }, Buffer.from('hi'));
    expect(event).toEqual({
      version: '2.0', routeKey: 'POST /items', rawPath: '/items', rawQueryString: 'a=1&a=2&b=&__proto__=x&constructor=y',
      cookies: ['a=1', 'b=2'],
      headers: { 'host': 'api.example.test', 'user-agent': 'curl/8', 'x-dup': '1,2', 'content-type': 'text/plain' },
      queryStringParameters: { a: '1,2', b: '', ['__proto__']: 'x', constructor: 'y' },
      requestContext: {
        domainName: 'api.example.test', domainPrefix: 'api',
        http: { method: 'POST', path: '/items', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8' },
        requestId: 'req-1', routeKey: 'POST /items', stage: '$default', time: expect.stringMatching(CLF), timeEpoch: expect.any(Number),
      },
      body: 'hi', isBase64Encoded: false,
    });
  });

  it('leaves out what API Gateway leaves out: body, cookies, parameters', async () => {
    const { event } = await seen({ ...lambdaCall, event: 'v2', method: 'GET', query: '', headers: ['host', 'h'] });
    expect(Object.keys(event).sort()).toEqual(['headers', 'isBase64Encoded', 'rawPath', 'rawQueryString', 'requestContext', 'routeKey', 'version']);
  });
});

describe('node-calls runLambda: the context', () => {
  it('has Lambda\'s fields, with local labels for AWS names', async () => {
    const { context } = await seen(lambdaCall);
    expect(context).toMatchObject({
      functionName: 'POST:/items', functionVersion: '$LATEST', memoryLimitInMB: '256', awsRequestId: 'req-1',
      invokedFunctionArn: 'arn:faas:lambda:local:000000000000:function:POST%3A%2Fitems',
      logGroupName: '/faas/POST:/items', callbackWaitsForEmptyEventLoop: true,
    });
    expect(context.logStreamName).toMatch(/^\d{4}\/\d\d\/\d\d\/\[\$LATEST\][0-9a-f]{32}$/);
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(9000);
    expect(context.getRemainingTimeInMillis()).toBeLessThanOrEqual(10_000);
    context.callbackWaitsForEmptyEventLoop = false; // settable, as Lambda code does
    expect(context.callbackWaitsForEmptyEventLoop).toBe(false);
  });
});

describe('node-calls runLambda: callback, context.done/succeed/fail and promises', () => {
  const ok = { statusCode: 200, body: 'ok' };
  const run = (fn: (...args: Json[]) => unknown): Promise<Answer> => calls.runLambda(fn, plainCall, Buffer.alloc(0), 'k', '128');

  it.each([
    ['callback(null, result)', function (_e: Json, _c: Json, cb: Json) { cb(null, ok); }],
    ['callback later, from a timer', function (_e: Json, _c: Json, cb: Json) { setTimeout(() => cb(null, ok), 20); }],
    ['context.succeed', function (_e: Json, c: Json) { c.succeed(ok); }],
    ['context.done(null, result) later', function (_e: Json, c: Json) { setTimeout(() => c.done(null, ok), 20); }],
    ['the callback, though a handler that takes one returned a plain value first', function (_e: Json, _c: Json, cb: Json) { setTimeout(() => cb(null, ok), 20); return { statusCode: 500 }; }],
  ])('answers from %s', async (_what, fn) => {
    expect(await run(fn)).toMatchObject({ status: 200, body: Buffer.from('ok') });
  });

  it('answers from whichever of the callback and the handler\'s promise settles first', async () => {
    const later = (v: unknown): Promise<unknown> => new Promise((r) => setTimeout(() => r(v), 20));
    expect(await run(async (_e: Json, _c: Json, cb: Json) => { cb(null, ok); return later({ statusCode: 500 }); })).toMatchObject({ status: 200 });
    expect(await run((_e: Json, _c: Json, cb: Json) => { void later(null).then(() => cb(null, { statusCode: 500 })); return Promise.resolve(ok); })).toMatchObject({ status: 200 });
  });

  it('takes a plain return as the answer only from a handler without a callback parameter', async () => {
    expect(await run((_e: Json) => ok)).toMatchObject({ status: 200 });
    const pending = Symbol('pending');
    const raced = await Promise.race([run((_e: Json, _c: Json, _cb: Json) => ok), new Promise((r) => setTimeout(() => r(pending), 30))]);
    expect(raced).toBe(pending); // it waits for the callback; the worker's timeout ends a call that never gets one
  });

  it('fails the call with the error of callback(err), context.done(err), context.fail(err)', async () => {
    const boom = new Error('boom');
    await expect(run((_e: Json, _c: Json, cb: Json) => cb(boom))).rejects.toBe(boom);
    await expect(run((_e: Json, c: Json) => c.done(boom))).rejects.toBe(boom);
    await expect(run((_e: Json, c: Json) => c.fail(boom))).rejects.toBe(boom);
    await expect(run((_e: Json, c: Json) => c.fail())).rejects.toBe('handled');
    await expect(run(async () => { throw boom; })).rejects.toBe(boom);
  });

});

describe('node-calls runLambda: the result', () => {
  const answerOf = (result: unknown): Promise<Answer> => calls.runLambda(() => result, plainCall, Buffer.alloc(0), 'k', '128');

  it('sends headers, multiValueHeaders (which win for a name in both) and cookies', async () => {
    const out = await answerOf({
      statusCode: 201,
      headers: { 'Content-Type': 'text/plain', 'X-Count': 3, 'X-Flag': true, 'X-Skip': null, 'X-Both': 'single' },
      multiValueHeaders: { 'X-Multi': ['a', 'b'], 'x-both': ['m1', 'm2'] },
      cookies: ['a=1; Path=/', 'b=2'],
      body: Buffer.from([0, 1, 250, 255]).toString('base64'),
      isBase64Encoded: true,
    });
    expect(out).toEqual({
      status: 201,
      headers: ['content-type', 'text/plain', 'x-count', '3', 'x-flag', 'true', 'x-multi', 'a', 'x-multi', 'b', 'x-both', 'm1', 'x-both', 'm2',
        'set-cookie', 'a=1; Path=/', 'set-cookie', 'b=2'],
      body: Buffer.from([0, 1, 250, 255]),
    });
  });

  it('sends a value without statusCode as a 200 body (JSON, or text for a string); says what was wrong with one it cannot send', async () => {
    expect(await answerOf({ message: 'hi' })).toEqual({ status: 200, headers: ['content-type', 'application/json'], body: Buffer.from('{"message":"hi"}') });
    expect(await answerOf('Hello')).toEqual({ status: 200, headers: ['content-type', 'text/plain; charset=utf-8'], body: Buffer.from('Hello') });
    expect((await calls.runLambda(async () => undefined, plainCall, Buffer.alloc(0), 'k', '128')).invalid).toBe('the handler returned nothing; return { statusCode, headers, body }');
    expect((await answerOf({ statusCode: 'abc' })).invalid).toBe('statusCode must be an integer 100–599 (got "abc")');
  });
});

describe('node-calls encodeHostFrame', () => {
  it('frames the meta as JSON with the body beside it', () => {
    const [head, body] = calls.encodeHostFrame({ t: 'result', id: 3, status: 200, headers: [] }, Buffer.from('hé'));
    const json = JSON.stringify({ t: 'result', id: 3, status: 200, headers: [] });
    expect(head!.readUInt32BE(0)).toBe(4 + json.length + Buffer.byteLength('hé'));
    expect(head!.readUInt32BE(4)).toBe(json.length);
    expect(head!.subarray(8).toString()).toBe(json);
    expect(body!.toString()).toBe('hé');
    expect(calls.encodeHostFrame({ t: 'ready' })).toHaveLength(1);
  });
});

describe('node-calls HostFrameReader', () => {
  it('reads frames split at every byte, and several in one chunk', async () => {
    const reader = new (calls as unknown as { HostFrameReader: new () => { push(c: Buffer): Array<{ msg: { id: number }; body: Buffer }> } }).HostFrameReader();
    const frame = (id: number, body: string): Buffer => Buffer.concat(calls.encodeHostFrame({ t: 'invoke', id }, Buffer.from(body)));
    const all = Buffer.concat([frame(1, 'a'.repeat(70_000)), frame(2, ''), frame(3, 'xyz')]);
    const got = [];
    for (let i = 0; i < all.length; i += 4093) got.push(...reader.push(all.subarray(i, i + 4093)));
    const last = frame(4, 'b');
    for (let i = 0; i < last.length; i++) got.push(...reader.push(last.subarray(i, i + 1)));
    expect(got.map((f) => [f.msg.id, f.body.length])).toEqual([[1, 70_000], [2, 0], [3, 3], [4, 1]]);
    expect(new Set(got[0]!.body)).toEqual(new Set([97]));
  });
});
