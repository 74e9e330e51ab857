// What a function needs built before it can run, decided from its config and its files: node
// modules from a package-lock.json (npm.ts), python packages from a requirements.txt (pip.ts), a
// Go program from its source (go.ts). A plan names its inputs by a content hash, which is the
// name of its entry in the cache (builds.ts): the same lock file, requirements or source is built
// once, whichever routes use it, and found again after a restart.
//
// Planning reads files but runs nothing, so it also serves as the deploy-time check
// (function-store.ts checkFunction): a missing lock file or an unpinned requirement is refused
// before the row is written, in the words the row error would use.
import type { FunctionConfig } from '../protocol/messages.js';
import { goPlan } from './go.js';
import { npmPlan } from './npm.js';
import { pipPlan } from './pip.js';
import { DEFAULT_BUILD_SETTINGS, type BuildSettings, type Planned } from './recipe.js';

export type { BuildSettings, Plan, Planned } from './recipe.js';

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
