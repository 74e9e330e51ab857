// The management API's pure parts and its store: the admin token file and its check, the
// --admin-host rule, JSON merge patch, the one write that `faas deploy` and PUT share (versions,
// preconditions decided inside the transaction), and the OpenAPI document against the code and
// README (test/integration/api.test.ts checks it against real answers).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTokenFile, TokenCheck } from '../../src/admin-token.js';
import { ConfigError, loadGatewayConfig } from '../../src/config.js';
import { ERRORS } from '../../src/errors.js';
import { mergePatch } from '../../src/http/api-v1.js';
import { OPENAPI } from '../../src/http/openapi.js';
import { FIELDS } from '../../src/routes/function-config.js';
import { checkFunction, FunctionStore, openForWrite, upsertFunction } from '../../src/routes/function-store.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-mgmt-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const TOKEN = '0123456789abcdef0123456789abcdef';

function tokenFile(name: string, text: string, mode = 0o600): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  fs.chmodSync(file, mode);
  return file;
}

describe('the admin token', () => {
  it('is the file\'s one line, without its newline', () => {
    expect(readTokenFile(tokenFile('t1', `${TOKEN}\n`))).toEqual({ token: TOKEN });
  });

  it('refuses a file others can read, a short or spaced token, and a missing file, saying how to fix it', () => {
    expect(readTokenFile(tokenFile('t2', TOKEN, 0o644))).toEqual({ error: `${path.join(tmp, 't2')} is readable by every user (mode 644); chmod 600 ${path.join(tmp, 't2')}` });
    expect('error' in readTokenFile(tokenFile('t3', 'short'))).toBe(true);
    expect((readTokenFile(tokenFile('t4', `${TOKEN} ${TOKEN}`)) as { error: string }).error).toContain('openssl rand -hex 32');
    expect(readTokenFile(path.join(tmp, 'none'))).toEqual({ error: `${path.join(tmp, 'none')} cannot be read (no such file)` });
  });

  it('matches the token only, whatever the length presented', () => {
    const check = new TokenCheck(TOKEN);
    expect(check.matches(TOKEN)).toBe(true);
    expect(check.matches(`${TOKEN}x`)).toBe(false);
    expect(check.matches(TOKEN.slice(1))).toBe(false);
    expect(check.matches('')).toBe(false);
  });
});

describe('--admin-host', () => {
  it('is 127.0.0.1 by default, and any loopback address needs no token', () => {
    expect(loadGatewayConfig([], {})).toMatchObject({ adminHost: '127.0.0.1', adminTokenFile: undefined });
    for (const host of ['::1', 'localhost', '127.0.0.2']) expect(loadGatewayConfig(['--admin-host', host], {}).adminHost).toBe(host);
  });

  it('refuses any other address without --admin-token-file, and takes it with one (flags or environment)', () => {
    expect(() => loadGatewayConfig(['--admin-host', '0.0.0.0'], {})).toThrow(ConfigError);
    expect(() => loadGatewayConfig([], { FAAS_ADMIN_HOST: '10.0.0.5' })).toThrow('--admin-host 10.0.0.5 would open the admin API');
    const file = tokenFile('t5', TOKEN);
    expect(loadGatewayConfig(['--admin-host', '0.0.0.0', '--admin-token-file', file], {})).toMatchObject({ adminHost: '0.0.0.0', adminTokenFile: file });
    expect(loadGatewayConfig([], { FAAS_ADMIN_HOST: '0.0.0.0', FAAS_ADMIN_TOKEN_FILE: file }).adminTokenFile).toBe(file);
  });

  it('names a token file it cannot use, with the other problems', () => {
    try {
      loadGatewayConfig(['--admin-token-file', path.join(tmp, 'missing'), '--port', 'x'], {});
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        '--port must be an integer between 0 and 65535 (got "x")',
        `--admin-token-file must name a file holding the admin API's token: ${path.join(tmp, 'missing')} cannot be read (no such file) (got "${path.join(tmp, 'missing')}")`,
      ]);
    }
  });
});

describe('JSON merge patch (RFC 7396)', () => {
  it('merges objects, replaces the rest, and removes what is null', () => {
    expect(mergePatch({ a: 1, env: { A: '1', B: '2' } }, { env: { B: null, C: '3' }, t: 5 })).toEqual({ a: 1, env: { A: '1', C: '3' }, t: 5 });
    expect(mergePatch({ a: [1, 2] }, { a: [3] })).toEqual({ a: [3] });
    expect(mergePatch({ a: 1 }, { a: null, b: null })).toEqual({});
    expect(mergePatch({ a: 1 }, 'x')).toBe('x');
  });

  it('keeps a field named __proto__ a field', () => {
    const patched = mergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(Object.keys(patched)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('the one write (faas deploy, PUT and PATCH)', () => {
  const dbPath = path.join(tmp, 'faas.db');
  const v = (timeout: number): string => JSON.stringify({ runtime: 'node', code: 'export default {}', timeout_ms: timeout });

  it('checks a row with the gateway\'s rules, every problem at once', () => {
    expect(checkFunction('get:/x', JSON.stringify({ runtime: 'ruby', timeout_ms: 0, code: 'x' }))).toEqual({ ok: false, problems: [
      "functions.k must be 'METHOD:/path' with METHOD in upper case, one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (got \"get:/x\")",
      'v.runtime must be one of "node", "python", "wasm", "go" (got "ruby")',
      'v.timeout_ms must be an integer between 1 and 900000 (got 0)',
    ] });
    expect(checkFunction('GET:/x', v(5)).ok).toBe(true);
  });

  it('gives every write a new version, the same config again too', () => {
    const db = openForWrite(dbPath);
    try {
      const first = upsertFunction(db, 'GET:/w', v(5));
      const second = upsertFunction(db, 'GET:/w', v(6));
      const third = upsertFunction(db, 'GET:/w', v(6));
      expect([first.change, second.change, third.change]).toEqual(['created', 'updated', 'redeployed']);
      expect(second.version).toBeGreaterThan(first.version);
      expect(third.version).toBeGreaterThan(second.version);
    } finally {
      db.close();
    }
  });

  it('decides inside the transaction, from the row as it is: a refusal or a bad result writes nothing', async () => {
    const store = new FunctionStore(dbPath);
    const current = (await store.get('GET:/w'))!;
    const seen: number[] = [];
    const refused = await store.write('GET:/w', (row) => {
      seen.push(row!.version);
      return { refused: 'stale' };
    });
    expect(refused).toEqual({ ok: false, refused: 'stale' });
    expect(seen).toEqual([current.version]);
    const bad = await store.write('GET:/w', () => ({ v: v(0) }));
    expect(bad).toEqual({ ok: false, problems: ['v.timeout_ms must be an integer between 1 and 900000 (got 0)'] });
    expect(await store.get('GET:/w')).toEqual(current);
    const removed = await store.remove('GET:/w', (row) => (row.version === current.version ? undefined : 'moved'));
    expect(removed).toEqual({ ok: true, removed: current });
    expect(await store.remove('GET:/w', () => undefined)).toEqual({ ok: false, missing: true });
  });

  it('never creates a database the gateway\'s file went away from', async () => {
    await expect(new FunctionStore(path.join(tmp, 'gone.db')).write('GET:/x', () => ({ v: v(5) }))).rejects.toThrow();
    expect(fs.existsSync(path.join(tmp, 'gone.db'))).toBe(false);
  });
});

describe('the OpenAPI document', () => {
  it('docs/openapi.json is the one the gateway serves (node scripts/write-openapi.mjs writes it after a build)', () => {
    expect(JSON.parse(fs.readFileSync('docs/openapi.json', 'utf8'))).toEqual(JSON.parse(JSON.stringify(OPENAPI)));
  });

  it('describes every config field and lists every error code', () => {
    const config = OPENAPI.components.schemas.FunctionConfig as { properties: Record<string, object> };
    expect(Object.keys(config.properties)).toEqual([...FIELDS]);
    expect(FIELDS.filter((f) => Object.keys(config.properties[f]!).length === 0)).toEqual([]);
    expect((OPENAPI.components.schemas.Error as { properties: { code: { enum: string[] } } }).properties.code.enum).toEqual(Object.keys(ERRORS));
  });

  it('README\'s API table lists every operation', () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('### Management API'), readme.indexOf('### Logs and traces'));
    for (const [p, item] of Object.entries(OPENAPI.paths)) {
      for (const method of Object.keys(item).filter((m) => m !== 'parameters')) {
        expect(section, `${method} ${p}`).toContain(`\`${method.toUpperCase()} /api/v1${p}`);
      }
    }
  });
});
