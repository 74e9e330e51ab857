// Functions written for AWS Lambda, unmodified, through the real gateway: the console's default
// templates, callback handlers, the API Gateway REST event (v1) and the HTTP API payload (v2),
// results with multiValueHeaders, cookies and base64 bodies, in node and python.
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw?.stop();
});

/** A request with repeated header lines (fetch would join them into one). */
function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string | string[]>; body?: Buffer } = {}):
Promise<{ status: number; rawHeaders: string[]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Every value of header `name` in a raw header list, in order. */
function valuesOf(rawHeaders: string[], name: string): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === name);
}

// Starts with PNG's signature, holds bytes that are not UTF-8, and every byte value.
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i))]);

describe('the Lambda console templates', () => {
  it('run unmodified: node\'s `export const handler = async (event)`, python\'s lambda_handler with no "handler" in the row', async () => {
    for (const [key, runtime, file] of [['GET:/tpl/node', 'node', 'lambda-esm.mjs'], ['GET:/tpl/python', 'python', 'lambda_function.py']]) {
      const res = await deploy(gw, key!, { runtime, path: path.resolve('examples', file!) });
      expect([key, res.status, await res.text()]).toEqual([key, 200, '"Hello from Lambda!"']);
    }
  });
});

describe('node handlers', () => {
  it('a CommonJS callback handler, multiValueHeaders and multiValueQueryStringParameters in and out', async () => {
    await deploy(gw, 'GET:/cb', { runtime: 'node', path: path.resolve('examples/lambda-callback.cjs') });
    const res = await rawRequest(`${gw.http}/cb?name=ann&name=bob`);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toMatch(/^hello ann, bob \(128 MB, \d+ ms left\)\n$/);
    expect(valuesOf(res.rawHeaders, 'x-greeted')).toEqual(['ann', 'bob']);
    expect(valuesOf(res.rawHeaders, 'content-type')).toEqual(['text/plain; charset=utf-8']);
  });

  it('callback(err) is a 500 FUNCTION_ERROR with the error\'s message', async () => {
    await deploy(gw, 'GET:/cb-err', { runtime: 'node', path: path.resolve('examples/lambda-callback.cjs') });
    const res = await fetch(`${gw.http}/cb-err`);
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_ERROR');
    expect(body.message).toContain('Error: a name is required: ?name=…');
  });

  it('context.succeed from a timer, with Lambda\'s context fields', async () => {
    const code = `exports.handler = function (event, context) {
      setTimeout(() => context.succeed({ statusCode: 201, body: JSON.stringify({
        functionName: context.functionName, functionVersion: context.functionVersion, memory: context.memoryLimitInMB,
        requestId: context.awsRequestId, logGroup: context.logGroupName, left: context.getRemainingTimeInMillis() }) }), 5);
    };`;
    await deploy(gw, 'POST:/succeed', { runtime: 'node', code, memory_mb: 96, timeout_ms: 4000 });
    const res = await fetch(`${gw.http}/succeed`, { method: 'POST', headers: { 'x-request-id': 'lambda-req-1' } });
    expect(res.status).toBe(201);
    const seen = await res.json();
    expect(seen).toMatchObject({ functionName: 'POST:/succeed', functionVersion: '$LATEST', memory: '96', requestId: 'lambda-req-1', logGroup: '/faas/POST:/succeed' });
    expect(seen.left).toBeGreaterThan(3000);
    expect(seen.left).toBeLessThanOrEqual(4000);
  });

  it('the REST API event: repeated headers last-value and multi, the query both ways, case-blind header lookup', async () => {
    const code = `exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({
      tag: event.headers['X-Tag'], tags: event.multiValueHeaders['x-tag'], q: event.queryStringParameters,
      mq: event.multiValueQueryStringParameters, resource: event.resource, stage: event.requestContext.stage,
      domain: event.requestContext.domainName, protocol: event.requestContext.protocol, body: event.body,
      pathParameters: event.pathParameters, ua: event.requestContext.identity.userAgent }) });`;
    await deploy(gw, 'POST:/v1', { runtime: 'node', code });
    const host = new URL(gw.http).host;
    const res = await rawRequest(`${gw.http}/v1?a=1&a=2&b=x`, { method: 'POST', headers: { 'x-tag': ['one', 'two'], 'user-agent': 'lambda-test', 'content-type': 'application/json' }, body: Buffer.from('{"k":1}') });
    expect(JSON.parse(res.body.toString())).toEqual({
      tag: 'two', tags: ['one', 'two'], q: { a: '2', b: 'x' }, mq: { a: ['1', '2'], b: ['x'] }, resource: '/v1', stage: '$default',
      domain: host, protocol: 'HTTP/1.1', body: '{"k":1}', pathParameters: null, ua: 'lambda-test',
    });
  });

  it('a v2 route ("event": "v2") gets the HTTP API payload; cookies in the result are set-cookie lines', async () => {
    const code = `exports.handler = async (event) => ({ statusCode: 200, cookies: ['s=1; HttpOnly', 't=2'], body: JSON.stringify({
      version: event.version, routeKey: event.routeKey, rawQueryString: event.rawQueryString, cookies: event.cookies,
      q: event.queryStringParameters, tag: event.headers['x-tag'], cookieHeader: event.headers.cookie ?? null,
      method: event.requestContext.http.method, path: event.requestContext.http.path }) });`;
    await deploy(gw, 'GET:/v2', { runtime: 'node', code, event: 'v2' });
    const res = await rawRequest(`${gw.http}/v2?a=1&a=2`, { headers: { 'x-tag': ['one', 'two'], 'cookie': 'x=1; y=2' } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({
      version: '2.0', routeKey: 'GET /v2', rawQueryString: 'a=1&a=2', cookies: ['x=1', 'y=2'], q: { a: '1,2' }, tag: 'one,two',
      cookieHeader: null, method: 'GET', path: '/v2',
    });
    expect(valuesOf(res.rawHeaders, 'set-cookie')).toEqual(['s=1; HttpOnly', 't=2']);
  });
});

describe('python handlers', () => {
  it('lambda_handler(event, context): the REST API event, the client\'s address, the context', async () => {
    const code = [
      'import json',
      'def lambda_handler(event, context):',
      '    return {"statusCode": 200, "multiValueHeaders": {"x-out": ["1", "2"]}, "body": json.dumps({',
      '        "method": event["httpMethod"], "q": event["queryStringParameters"], "mq": event["multiValueQueryStringParameters"],',
      '        "tag": event["headers"]["X-Tag"], "tags": event["multiValueHeaders"]["x-tag"],',
      '        "sourceIp": event["requestContext"]["identity"]["sourceIp"], "requestId": event["requestContext"]["requestId"],',
      '        "name": context.function_name, "memory": context.memory_limit_in_mb, "awsRequestId": context.aws_request_id,',
      '        "left": context.get_remaining_time_in_millis()})}',
    ].join('\n');
    // memory_mb other than the default: no pre-started sandbox has that shape, so the first call
    // starts one that gets its name and memory from the worker's start (zygote or arguments), not a load frame.
    await deploy(gw, 'GET:/py/event', { runtime: 'python', code, timeout_ms: 5000, memory_mb: 160 });
    const res = await rawRequest(`${gw.http}/py/event?a=1&a=2`, { headers: { 'x-tag': ['one', 'two'], 'x-request-id': 'py-req-1' } });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body.toString());
    expect(seen).toMatchObject({
      method: 'GET', q: { a: '2' }, mq: { a: ['1', '2'] }, tag: 'two', tags: ['one', 'two'], sourceIp: '127.0.0.1',
      requestId: 'py-req-1', name: 'GET:/py/event', memory: '160', awsRequestId: 'py-req-1',
    });
    expect(seen.left).toBeGreaterThan(4000);
    expect(seen.left).toBeLessThanOrEqual(5000);
    expect(valuesOf(res.rawHeaders, 'x-out')).toEqual(['1', '2']);
  });

  it('a binary body both ways: base64 in the event, isBase64Encoded in the result, byte for byte', async () => {
    const code = [
      'def lambda_handler(event, context):',
      '    assert event["isBase64Encoded"] is True',
      '    return {"statusCode": 200, "headers": {"content-type": "image/png"}, "body": event["body"], "isBase64Encoded": True}',
    ].join('\n');
    await deploy(gw, 'POST:/py/png', { runtime: 'python', code });
    const res = await fetch(`${gw.http}/py/png`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: PNG });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);
  });

  it('handle(request) may answer isBase64Encoded too', async () => {
    const code = [
      'import base64',
      'def handle(request):',
      '    return {"statusCode": 200, "body": base64.b64encode(request.body).decode(), "isBase64Encoded": True}',
    ].join('\n');
    await deploy(gw, 'POST:/py/b64', { runtime: 'python', code });
    const res = await fetch(`${gw.http}/py/b64`, { method: 'POST', body: PNG });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);
  });

  it('a named handler taking (event, context) on a v2 route gets the HTTP API payload', async () => {
    const code = [
      'def main(event, context):',
      '    return {"version": event["version"], "cookies": event.get("cookies"), "q": event.get("queryStringParameters")}',
    ].join('\n');
    await deploy(gw, 'GET:/py/v2', { runtime: 'python', code, handler: 'main', event: 'v2' });
    const res = await fetch(`${gw.http}/py/v2?a=1&a=2`, { headers: { cookie: 'x=1; y=2' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ version: '2.0', cookies: ['x=1', 'y=2'], q: { a: '1,2' } });
  });
});
