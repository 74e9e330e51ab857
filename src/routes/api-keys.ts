// API keys (CONTRACT §2): `faas keys create NAME` makes a random key, prints it once and stores
// only its SHA-256 in the api_keys table; the gateway reloads the table with the routes (same
// sync, same snapshot) and checks `x-api-key` / `Authorization: Bearer` on routes with
// "auth": "api-key".
//
// Why a digest lookup is safe against timing: the map is keyed by SHA-256 of what the client
// sent, so how long a lookup takes depends on a digest the client cannot steer without
// preimages. The match is then confirmed with crypto.timingSafeEqual, as the issue asks.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';

/** A key as `faas keys create` prints it: a prefix that says what it is, then 256 random bits. */
const KEY_PREFIX = 'faas_';
export const KEY_NAME = /^[A-Za-z0-9._-]{1,64}$/;
export const KEY_NAME_RULE = 'must be 1–64 characters of A–Z, a–z, 0–9, ".", "_" or "-"';
/** Longest credential the gateway hashes: a key is 48 characters; more is not a key of ours. */
const MAX_PRESENTED = 256;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

export function generateKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The keys the gateway accepts now: digest (hex) → name. Immutable; a reload makes a new one. */
export class KeyRing {
  static readonly EMPTY = new KeyRing(new Map());

  constructor(private readonly byDigest: ReadonlyMap<string, { readonly name: string; readonly digest: Buffer }>) {}

  /** Rows whose hash is not a SHA-256 in hex (the table's triggers refuse them) could match nothing and are left out. */
  static fromRows(rows: ReadonlyArray<{ name: unknown; hash: unknown }>): KeyRing {
    const valid = rows.filter((r): r is { name: string; hash: string } => typeof r.name === 'string' && typeof r.hash === 'string' && HEX_SHA256.test(r.hash));
    return new KeyRing(new Map(valid.map((r) => [r.hash, { name: r.name, digest: Buffer.from(r.hash, 'hex') }])));
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** The name of the key presented, or undefined when it is not a key in the ring. */
  check(presented: string): string | undefined {
    if (presented.length === 0 || presented.length > MAX_PRESENTED) return undefined;
    const digest = hashKey(presented);
    const entry = this.byDigest.get(digest.toString('hex'));
    return entry && timingSafeEqual(entry.digest, digest) ? entry.name : undefined;
  }

  /** Same names and digests: a reload that changed nothing keeps the old ring. */
  equals(other: KeyRing): boolean {
    if (other.byDigest.size !== this.byDigest.size) return false;
    for (const [hash, { name }] of this.byDigest) if (other.byDigest.get(hash)?.name !== name) return false;
    return true;
  }
}

export interface KeyInfo {
  readonly name: string;
  readonly created: number;
}

/** Creates a key named `name`; returns the key itself, which is stored nowhere. */
export function createKey(db: Database.Database, name: string): string {
  if (!KEY_NAME.test(name)) throw new KeyError(`key name ${JSON.stringify(name)} ${KEY_NAME_RULE}`);
  const key = generateKey();
  try {
    db.prepare('INSERT INTO api_keys(name, hash) VALUES (?, ?)').run(name, hashKey(key).toString('hex'));
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      throw new KeyError(`a key named ${JSON.stringify(name)} exists; revoke it first or pick another name`);
    }
    throw err;
  }
  return key;
}

/** Deletes the key named `name`; false when there was none. */
export function revokeKey(db: Database.Database, name: string): boolean {
  return db.prepare('DELETE FROM api_keys WHERE name = ?').run(name).changes > 0;
}

export function listKeys(db: Database.Database): KeyInfo[] {
  return db.prepare('SELECT name, created FROM api_keys ORDER BY name').all() as KeyInfo[];
}

export class KeyError extends Error {}
