// What every build recipe (npm.ts, pip.ts, go.ts) is: a plan naming its inputs by a content
// hash, and a build that writes the artifact; plan.ts picks the recipe for a function.
import { createHash } from 'node:crypto';
import type { BuiltArtifact } from '../protocol/messages.js';

/** The operator's settings that change what a build fetches (config.ts: --pip-index-url, …). */
export interface BuildSettings {
  readonly pipIndexUrl?: string | undefined;
  readonly pipFindLinks?: string | undefined;
  /** GOPROXY for module downloads at build time; "off" (the default): vendor/ or the module cache only. */
  readonly goProxy: string;
}

export const DEFAULT_BUILD_SETTINGS: BuildSettings = Object.freeze({ goProxy: 'off' });

export interface Plan {
  readonly kind: BuiltArtifact['kind'];
  /** Hash of everything the result depends on: the cache entry's name. */
  readonly hash: string;
  /** What runs, for the log and GET /routes: "npm ci (package-lock.json)". */
  readonly what: string;
  /**
   * Builds into `out` (an empty folder the builder owns; the artifact goes in its
   * ARTIFACT_SUBDIR), with the tools' own caches under `cacheRoot/<tool>` (builder-owned too).
   * Resolves to a one-line summary of what it did; rejects with the row error.
   */
  build(out: string, cacheRoot: string): Promise<string>;
}

/** A plan, nothing to build (undefined), or why the function's files cannot be built. */
export type Planned = Plan | undefined | { readonly problem: string };

/** sha256 over labelled parts, hex, 32 characters: the cache entry's name. */
export function hashOf(parts: ReadonlyArray<readonly [label: string, value: string | Buffer]>): string {
  const h = createHash('sha256');
  for (const [label, value] of parts) {
    h.update(label).update('\0').update(String(Buffer.byteLength(value))).update('\0').update(value);
  }
  return h.digest('hex').slice(0, 32);
}
