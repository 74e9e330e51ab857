// What a function needs built before it can run, decided from its config and its files: node
// modules from a package-lock.json (npm.ts), python packages from a requirements.txt (pip.ts), a
// Go program from its source (go.ts). A plan names its inputs by a content hash, which is the
// name of its entry in the cache (builds.ts): the same lock file, requirements or source is built
// once, whichever routes use it, and found again after a restart.
//
// Planning reads files but runs nothing, so it also serves as the deploy-time check
// (function-config.ts checkUsable): a missing lock file or an unpinned requirement is refused
// before the row is written, in the words the row error would use.
import { createHash } from 'node:crypto';
import type { BuiltArtifact, FunctionConfig } from '../protocol/messages.js';
import { goPlan } from './go.js';
import { npmPlan } from './npm.js';
import { pipPlan } from './pip.js';

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

export function planBuild(config: FunctionConfig, settings: BuildSettings = DEFAULT_BUILD_SETTINGS): Planned {
  try {
    switch (config.runtime) {
      case 'node': return npmPlan(config);
      case 'python': return pipPlan(config, settings);
      case 'go': return goPlan(config, settings);
      default: return undefined;
    }
  } catch (err) {
    return { problem: `v.path ${JSON.stringify(config.path)} cannot be read to plan its build: ${(err as Error).message}` };
  }
}

/** sha256 over labelled parts, hex, 32 characters: the cache entry's name. */
export function hashOf(parts: ReadonlyArray<readonly [label: string, value: string | Buffer]>): string {
  const h = createHash('sha256');
  for (const [label, value] of parts) {
    h.update(label).update('\0').update(String(Buffer.byteLength(value))).update('\0').update(value);
  }
  return h.digest('hex').slice(0, 32);
}
