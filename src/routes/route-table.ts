// What the request path reads: an immutable snapshot of the routes (route-store.ts builds a new
// one whenever a sync changes something) and of the API keys their "auth": "api-key" accepts.
import type { FunctionConfig, FunctionSpec } from '../protocol/messages.js';
import { KeyRing } from './api-keys.js';
import { METHODS } from './route-key.js';

/** One servable function. It is a FunctionSpec plus where it is mounted; frozen. */
export interface Route extends FunctionSpec {
  /** 'METHOD:/path', as in the functions table and as the request path looks it up. */
  readonly key: string;
  readonly method: string;
  readonly path: string;
  /** The change-log seq of the row this config came from: unique across keys, increasing per key. */
  readonly version: number;
  /** The row's `updated`, unix ms. */
  readonly updated: number;
  readonly config: FunctionConfig;
}

const NO_METHODS: readonly string[] = Object.freeze([]);

/** An immutable snapshot of the routes, and of the API keys their "auth": "api-key" accepts. */
export class RouteTable {
  static readonly EMPTY = new RouteTable(new Map());

  constructor(readonly routes: ReadonlyMap<string, Route>, readonly keys: KeyRing = KeyRing.EMPTY) {}

  /** `key` is `${method}:${path}`. Called on every request: one Map.get. */
  get(key: string): Route | undefined {
    return this.routes.get(key);
  }

  /**
   * Methods that have a function at this path, in METHODS order: the `Allow` of a 405. One
   * lookup per method (~200 ns) rather than an index by path, which the first 404 after every
   * changing sync had to rebuild inside its request (38 ms at 100k routes: scripts/micro/route-lookup.mjs).
   */
  allowedMethods(path: string): readonly string[] {
    let allowed: string[] | undefined;
    for (const method of METHODS) if (this.routes.has(`${method}:${path}`)) (allowed ??= []).push(method);
    return allowed ?? NO_METHODS;
  }

  get size(): number {
    return this.routes.size;
  }
}
