import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createKey, hashKey, KeyRing, listKeys, revokeKey } from '../../src/routes/api-keys.js';
import { migrate } from '../../src/routes/schema.js';

function db(): Database.Database {
  const d = new Database(':memory:');
  migrate(d);
  return d;
}
const ring = (d: Database.Database): KeyRing => KeyRing.fromRows(d.prepare('SELECT name, hash FROM api_keys').all() as Array<{ name: string; hash: string }>);

describe('API keys', () => {
  it('stores only the SHA-256 of a new key, and the ring knows it by name', () => {
    const d = db();
    const key = createKey(d, 'ci-bot');
    expect(key).toMatch(/^faas_[A-Za-z0-9_-]{43}$/);
    const stored = d.prepare('SELECT hash FROM api_keys').pluck().get() as string;
    expect(stored).toBe(hashKey(key).toString('hex'));
    expect(JSON.stringify(d.prepare('SELECT * FROM api_keys').all())).not.toContain(key);
    const r = ring(d);
    expect(r.check(key)).toBe('ci-bot');
    expect(r.check(`${key}x`)).toBeUndefined();
    expect(r.check('')).toBeUndefined();
    expect(r.check('x'.repeat(10_000))).toBeUndefined();
  });

  it('refuses a taken or malformed name, revokes by name, lists without keys', () => {
    const d = db();
    createKey(d, 'a');
    expect(() => createKey(d, 'a')).toThrow('a key named "a" exists; revoke it first or pick another name');
    expect(() => createKey(d, 'has space')).toThrow(/key name "has space" must be 1–64 characters/);
    expect(listKeys(d).map((k) => k.name)).toEqual(['a']);
    expect(revokeKey(d, 'a')).toBe(true);
    expect(revokeKey(d, 'a')).toBe(false);
    expect(ring(d).size).toBe(0);
  });

  it('has triggers that refuse rows an operator writes by hand with a bad name or hash', () => {
    const d = db();
    const insert = (name: unknown, hash: unknown): string | undefined => {
      try {
        d.prepare('INSERT INTO api_keys(name, hash) VALUES (?, ?)').run(name, hash);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(insert('ok', 'a'.repeat(64))).toBeUndefined();
    expect(insert('bad name', 'b'.repeat(64))).toMatch(/^api_keys\.name must be 1–64 characters/);
    expect(insert('plain', 'the-key-itself')).toMatch(/^api_keys\.hash must be the SHA-256 of the key as 64 lower-case hex digits/);
    expect(insert('upper', 'A'.repeat(64))).toMatch(/^api_keys\.hash/);
  });

  it('leaves out rows that could match nothing, and compares rings by content', () => {
    const good = { name: 'a', hash: hashKey('k').toString('hex') };
    const r = KeyRing.fromRows([good, { name: 'b', hash: 'zz' }, { name: 3, hash: null }]);
    expect(r.size).toBe(1);
    expect(r.equals(KeyRing.fromRows([good]))).toBe(true);
    expect(r.equals(KeyRing.fromRows([{ ...good, name: 'renamed' }]))).toBe(false);
  });
});
