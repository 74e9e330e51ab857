import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkUsable, parseFunctionConfig } from '../../src/routes/function-config.js';
import type { FunctionConfig } from '../../src/protocol/messages.js';

const parse = (v: unknown) => parseFunctionConfig(typeof v === 'string' ? v : JSON.stringify(v));
function errorOf(v: unknown): string {
  const r = parse(v);
  if (r.ok) throw new Error(`expected ${JSON.stringify(v)} to be refused`);
  return r.error;
}
function configOf(v: unknown): FunctionConfig {
  const r = parse(v);
  if (!r.ok) throw new Error(r.error);
  return r.config;
}

describe('parseFunctionConfig', () => {
  it('applies the defaults of CONTRACT §2', () => {
    expect(configOf({ runtime: 'node', code: 'x' })).toEqual({
      runtime: 'node', mode: 'process', code: 'x', timeoutMs: 30000, memoryMb: 128, maxConcurrency: 100, minWarm: 0, env: {}, auth: 'none',
    });
  });

  it('turns every field into camelCase', () => {
    const config = configOf({
      runtime: 'python', mode: 'container', path: '/srv/fn', handler: 'main', timeout_ms: 5000, memory_mb: 256,
      max_concurrency: 4, min_warm: 2, env: { GREETING: 'hi', _X1: '' }, auth: 'api-key', rate_limit: { rps: 0.5, burst: 3 },
    });
    expect(config).toEqual({
      runtime: 'python', mode: 'container', path: '/srv/fn', handler: 'main', timeoutMs: 5000, memoryMb: 256,
      maxConcurrency: 4, minWarm: 2, env: { GREETING: 'hi', _X1: '' }, auth: 'api-key', rateLimit: { rps: 0.5, burst: 3 },
    });
    expect(Object.isFrozen(config) && Object.isFrozen(config.env) && Object.isFrozen(config.rateLimit)).toBe(true);
  });

  it('treats JSON null as an absent optional field', () => {
    expect(configOf({ runtime: 'node', code: 'x', path: null, mode: null, timeout_ms: null, env: null, rate_limit: null }))
      .toEqual(configOf({ runtime: 'node', code: 'x' }));
  });

  it('accepts an integral number written as 5000.0, as JSON.parse reads it', () => {
    expect(configOf('{"runtime":"node","code":"x","timeout_ms":5000.0}').timeoutMs).toBe(5000);
  });

  it('names the field, the rule and the bad value', () => {
    expect(errorOf({ runtime: 'node', code: 'x', timeout_ms: '5s' })).toBe('v.timeout_ms must be an integer between 1 and 900000 (got "5s")');
    expect(errorOf({ runtime: 'ruby', code: 'x' })).toBe('v.runtime must be one of "node", "python", "wasm", "go" (got "ruby")');
    expect(errorOf({ code: 'x' })).toBe('v.runtime is required and must be one of "node", "python", "wasm", "go"');
    expect(errorOf({ runtime: 'node', code: 'x', mode: 'vm' })).toBe('v.mode must be one of "process", "container", "thread" (got "vm")');
    expect(errorOf({ runtime: 'node', code: 'x', memory_mb: 8 })).toBe('v.memory_mb must be an integer between 16 and 16384 (got 8)');
    expect(errorOf({ runtime: 'node', code: 'x', max_concurrency: 1.5 })).toBe('v.max_concurrency must be an integer between 1 and 10000 (got 1.5)');
    expect(errorOf({ runtime: 'node', code: 'x', auth: 'jwt' })).toBe('v.auth must be one of "none", "api-key" (got "jwt")');
    expect(errorOf({ runtime: 'node', code: '' })).toBe('v.code must be a non-empty string (got "")');
    expect(errorOf({ runtime: 'node', path: 'fn/index.js' })).toBe('v.path must be an absolute path (a string starting with "/") (got "fn/index.js")');
    expect(errorOf({ runtime: 'node', code: 'x', handler: 'a.b' })).toMatch(/^v\.handler must be an identifier.*\(got "a\.b"\)$/);
  });

  it('wants exactly one of code and path', () => {
    expect(errorOf({ runtime: 'node' })).toBe('v must have exactly one of "code" (the source inline) or "path" (an absolute path); it has neither');
    expect(errorOf({ runtime: 'node', code: 'x', path: '/x' })).toMatch(/; it has both$/);
  });

  it('refuses unknown fields, lists the allowed ones, and guesses the typo', () => {
    expect(errorOf({ runtime: 'node', code: 'x', timeout: 5000 })).toBe(
      'v.timeout is not a known field (did you mean "timeout_ms"?); allowed fields: runtime, mode, code, path, handler, timeout_ms, memory_mb, max_concurrency, env, auth, rate_limit, min_warm, image, cpu, isolation, event, cors, async, dependencies');
    expect(errorOf({ runtime: 'node', code: 'x', memoryMb: 64 })).toContain('v.memoryMb is not a known field (did you mean "memory_mb"?)');
    expect(errorOf({ runtime: 'node', code: 'x', colour: 1 })).toMatch(/^v\.colour is not a known field; allowed fields: /);
  });

  it('checks env names and values', () => {
    expect(errorOf({ runtime: 'node', code: 'x', env: ['A=1'] })).toBe('v.env must be an object whose values are strings (got ["A=1"])');
    expect(errorOf({ runtime: 'node', code: 'x', env: { '1A': 'x' } })).toBe('v.env has an invalid name "1A": names must match [A-Za-z_][A-Za-z0-9_]*');
    expect(errorOf({ runtime: 'node', code: 'x', env: { PORT: 8080 } })).toBe('v.env.PORT must be a string (got 8080)');
    // "__proto__" is a valid name and must stay a plain entry, not a prototype.
    const env = configOf('{"runtime":"node","code":"x","env":{"__proto__":"p"}}').env;
    expect(Object.keys(env)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
  });

  it('checks image: an absolute path or an image name, and only with container mode', () => {
    expect(configOf({ runtime: 'python', mode: 'container', image: '/srv/images/py', code: 'x' }).image).toBe('/srv/images/py');
    expect(configOf({ runtime: 'python', mode: 'container', image: 'docker.io/library/python:3.12-slim', code: 'x' }).image).toBe('docker.io/library/python:3.12-slim');
    expect(errorOf({ runtime: 'python', mode: 'container', image: 'python 3.12', code: 'x' })).toBe('v.image must be the absolute path of a root '
      + 'file system folder (a string starting with "/"), or a Docker/Podman image name (letters, digits and . _ / : @ -, at most 255) (got "python 3.12")');
    expect(errorOf({ runtime: 'python', image: '/srv/images/py', code: 'x' })).toBe('v.image needs "mode": "container" (got "process")');
  });

  it('checks rate_limit', () => {
    expect(errorOf({ runtime: 'node', code: 'x', rate_limit: { rps: 0, burst: 1 } })).toBe('v.rate_limit.rps must be a number greater than 0 (got 0)');
    expect(errorOf({ runtime: 'node', code: 'x', rate_limit: { rps: 1 } })).toBe('v.rate_limit.burst must be an integer of at least 1 (got nothing)');
    expect(errorOf({ runtime: 'node', code: 'x', rate_limit: { rps: 1, burst: 1, window: 1 } })).toMatch(/^v\.rate_limit must be an object \{"rps": N, "burst": M\}; allowed fields: rps, burst/);
    expect(errorOf({ runtime: 'node', code: 'x', rate_limit: 10 })).toMatch(/^v\.rate_limit must be an object/);
  });

  it('takes event v1 or v2; v1, the default, is left out', () => {
    expect(configOf({ runtime: 'node', code: 'x', event: 'v2' }).event).toBe('v2');
    expect(configOf({ runtime: 'node', code: 'x', event: 'v1' })).toEqual(configOf({ runtime: 'node', code: 'x' }));
    expect(errorOf({ runtime: 'node', code: 'x', event: 'v3' })).toBe('v.event must be one of "v1", "v2" (got "v3")');
    expect(errorOf({ runtime: 'node', code: 'x', event: 2 })).toBe('v.event must be one of "v1", "v2" (got 2)');
  });

  it('turns cors into camelCase, header names lower-case', () => {
    expect(configOf({ runtime: 'node', code: 'x', cors: { origins: ['https://app.example', 'http://localhost:3000', 'https://[::1]:8443'],
      methods: ['GET', 'PUT'], headers: ['X-Token'], max_age: 600, credentials: true } }).cors).toEqual({
      origins: ['https://app.example', 'http://localhost:3000', 'https://[::1]:8443'], methods: ['GET', 'PUT'], headers: ['x-token'], maxAge: 600, credentials: true,
    });
    expect(configOf({ runtime: 'node', code: 'x', cors: { origins: ['*'], headers: [], max_age: null } }).cors).toEqual({ origins: ['*'], headers: [] });
  });

  it('turns async into camelCase with the defaults for what it leaves out; a row without it has none', () => {
    expect(configOf({ runtime: 'node', code: 'x', async: { concurrency: 8, retries: 0, backoff_ms: 250, ttl_s: 60 } }).async)
      .toEqual({ concurrency: 8, retries: 0, backoffMs: 250, ttlS: 60 });
    expect(configOf({ runtime: 'node', code: 'x', async: { retries: 5, ttl_s: null } }).async).toEqual({ concurrency: 4, retries: 5, backoffMs: 1000, ttlS: 86400 });
    expect(configOf({ runtime: 'node', code: 'x', async: {} }).async).toEqual({ concurrency: 4, retries: 2, backoffMs: 1000, ttlS: 86400 });
    expect(configOf({ runtime: 'node', code: 'x' }).async).toBeUndefined();
  });

  it('names every broken part of async at once', () => {
    expect(errorOf({ runtime: 'node', code: 'x', async: { concurrency: 0, retries: 11, backoff_ms: 1.5, ttl_s: '1d' } }).split('; v.')).toEqual([
      'v.async.concurrency must be an integer between 1 and 1000 (got 0)',
      'async.retries must be an integer between 0 and 10 (got 11)',
      'async.backoff_ms must be an integer between 0 and 3600000 (got 1.5)',
      'async.ttl_s must be an integer between 1 and 2592000 (got "1d")',
    ]);
    expect(errorOf({ runtime: 'node', code: 'x', async: { retry: 1 } })).toBe(
      'v.async must be an object {"concurrency": N, "retries": N, "backoff_ms": N, "ttl_s": N}; allowed fields: concurrency, retries, backoff_ms, ttl_s (got {"retry":1})');
    expect(errorOf({ runtime: 'node', code: 'x', async: 4 })).toMatch(/^v\.async must be an object/);
  });

  it('names every broken part of cors at once', () => {
    expect(errorOf({ runtime: 'node', code: 'x', cors: { origins: ['https://app.example/', '*.example'], methods: ['get'], headers: ['x token'],
      max_age: 90000, credentials: 'yes' } }).split('; v.')).toEqual([
      'v.cors.origins must be a non-empty array of origins, each "*" (any) or scheme://host[:port] without a path ("https://app.example", "http://localhost:3000") (got ["https://app.example/","*.example"])',
      'cors.methods must be a non-empty array of methods, each one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (got ["get"])',
      'cors.headers must be an array of header names (letters, digits and !#$%&\'*+.^_`|~-) (got ["x token"])',
      'cors.max_age must be an integer between 0 and 86400 (got 90000)',
      'cors.credentials must be true or false (got "yes")',
    ]);
  });

  it('refuses cors without origins, with other fields, not an object, or credentials with the origin "*"', () => {
    expect(errorOf({ runtime: 'node', code: 'x', cors: { methods: ['GET'] } })).toMatch(/^v\.cors\.origins is required and must be a non-empty array of origins/);
    expect(errorOf({ runtime: 'node', code: 'x', cors: { origins: [] } })).toMatch(/^v\.cors\.origins must be a non-empty array.*\(got \[\]\)$/);
    expect(errorOf({ runtime: 'node', code: 'x', cors: { origins: ['*'], expose: ['x'] } })).toBe('v.cors must be an object {"origins": [...], '
      + '"methods": [...], "headers": [...], "max_age": N, "credentials": true|false}; allowed fields: origins, methods, headers, max_age, credentials (got {"origins":["*"],"expose":["x"]})');
    expect(errorOf({ runtime: 'node', code: 'x', cors: ['*'] })).toMatch(/^v\.cors must be an object/);
    expect(errorOf({ runtime: 'node', code: 'x', cors: { origins: ['*'], credentials: true } }))
      .toBe('v.cors.credentials cannot be true with the origin "*": browsers refuse credentials from a wildcard; list the origins (got true)');
  });

  it('lists every problem at once', () => {
    expect(errorOf({ runtime: 'ruby', code: 'x', timeout_ms: 0, auth: 'x' }).split('; ').map((p) => p.split(' ')[0]))
      .toEqual(['v.runtime', 'v.timeout_ms', 'v.auth']);
  });

  it('refuses text that is not a JSON object', () => {
    expect(errorOf('{runtime: node}')).toMatch(/^v must be valid JSON \(/);
    expect(errorOf('[1]')).toBe('v must be a JSON object (got [1])');
    expect(errorOf('null')).toBe('v must be a JSON object (got null)');
  });
});

describe('checkUsable', () => {
  const base = configOf({ runtime: 'node', code: 'x' });

  it('passes inline node and python code', () => {
    expect(checkUsable(base)).toBeUndefined();
    expect(checkUsable({ ...base, runtime: 'python' })).toBeUndefined();
  });

  it('runs every runtime in containers', () => {
    expect(checkUsable({ ...base, runtime: 'wasm' })).toBeUndefined();
    expect(checkUsable({ ...base, mode: 'container' })).toBeUndefined();
    expect(checkUsable({ ...base, runtime: 'wasm', mode: 'container' })).toBeUndefined();
  });

  it('runs wasm in a thread unless a mode is given; "thread" is for wasm only', () => {
    expect(configOf({ runtime: 'wasm', code: 'AGFzbQ==' }).mode).toBe('thread');
    expect(configOf({ runtime: 'wasm', mode: 'process', code: 'AGFzbQ==' }).mode).toBe('process');
    expect(errorOf({ runtime: 'node', mode: 'thread', code: 'x' })).toBe('v.mode "thread" is for runtime "wasm" only (got "thread")');
  });

  it('serves routes with auth and rate_limit (the gateway enforces both)', () => {
    expect(checkUsable({ ...base, auth: 'api-key', rateLimit: { rps: 1, burst: 1 } })).toBeUndefined();
  });

  it('wants path to exist as a file or a folder', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-config-'));
    try {
      const file = path.join(dir, 'index.js');
      fs.writeFileSync(file, 'exports.handler = async () => "ok"');
      const { code: _code, ...withoutCode } = base;
      expect(checkUsable({ ...withoutCode, path: file })).toBeUndefined();
      expect(checkUsable({ ...withoutCode, path: dir })).toBeUndefined();
      expect(checkUsable({ ...withoutCode, path: path.join(dir, 'nope.js') })).toBe(`v.path ${JSON.stringify(path.join(dir, 'nope.js'))} does not exist on this host`);
      expect(checkUsable({ ...withoutCode, path: path.join(file, 'x') })).toMatch(/does not exist on this host$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
