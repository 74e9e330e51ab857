// Node dependencies: a function folder (`path`) holding a package.json with dependencies gets its
// node_modules from `npm ci` — the lock file's exact tree, never a floating install — so the lock
// (package-lock.json or npm-shrinkwrap.json) is required. Install scripts are off unless the row
// says `"dependencies": {"scripts": true}`; dev dependencies are left out. A folder that brings its
// own node_modules (vendored) is used as it is: nothing is installed. The sandbox sees the result
// at /node_modules, where Node's resolution from /fn/index.mjs looks after /fn/node_modules.
import fs from 'node:fs';
import path from 'node:path';
import type { FunctionConfig } from '../protocol/messages.js';
import { hashOf, type Plan, type Planned } from './recipe.js';
import { runTool, toolFailure } from './tool.js';

export const LOCK_FILES = ['package-lock.json', 'npm-shrinkwrap.json'] as const;
/** npm reads its registry and auth from here when the folder has one. */
const NPMRC = '.npmrc';

/** npm's own CLI beside this node (Debian, nodesource and nvm lay it out so), else `npm` on PATH. */
function npmCommand(): { command: string; args: string[] } {
  const cli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  return fs.existsSync(cli) ? { command: process.execPath, args: [cli] } : { command: 'npm', args: [] };
}

export function npmPlan(config: FunctionConfig): Planned {
  if (config.path === undefined) return undefined; // inline code is one file: nothing to install
  const dir = config.path;
  if (!fs.statSync(dir).isDirectory()) return undefined;
  const manifestFile = path.join(dir, 'package.json');
  if (!fs.existsSync(manifestFile)) return undefined;
  const manifestText = fs.readFileSync(manifestFile, 'utf8');
  let manifest: unknown;
  try {
    manifest = JSON.parse(manifestText);
  } catch (err) {
    return { problem: `${manifestFile} is not valid JSON (${(err as Error).message})` };
  }
  const deps = (manifest as { dependencies?: unknown } | null)?.dependencies;
  if (deps === undefined || (typeof deps === 'object' && deps !== null && Object.keys(deps).length === 0)) return undefined;
  if (fs.existsSync(path.join(dir, 'node_modules'))) return undefined; // vendored: used as it is
  const lock = LOCK_FILES.find((name) => fs.existsSync(path.join(dir, name)));
  if (lock === undefined) {
    return {
      problem: `${manifestFile} has dependencies but the folder has no ${LOCK_FILES.join(' or ')}: ` +
        'the gateway installs with npm ci, which needs the lock file; run npm install there once and deploy again',
    };
  }
  const lockText = fs.readFileSync(path.join(dir, lock), 'utf8');
  try {
    JSON.parse(lockText);
  } catch (err) {
    return { problem: `${path.join(dir, lock)} is not valid JSON (${(err as Error).message}): run npm install there to write it again` };
  }
  const npmrc = fs.existsSync(path.join(dir, NPMRC)) ? fs.readFileSync(path.join(dir, NPMRC), 'utf8') : '';
  const scripts = config.dependencies?.scripts === true;
  const hash = hashOf([
    ['package.json', manifestText], [lock, lockText], [NPMRC, npmrc], ['scripts', String(scripts)],
    // Native modules are built for one Node ABI.
    ['node', process.versions.modules],
  ]);
  const plan: Plan = {
    kind: 'npm',
    hash,
    what: `npm ci (${lock}${scripts ? ', install scripts allowed' : ''})`,
    async build(out, cacheRoot) {
      fs.writeFileSync(path.join(out, 'package.json'), manifestText);
      fs.writeFileSync(path.join(out, lock), lockText);
      if (npmrc) fs.writeFileSync(path.join(out, NPMRC), npmrc);
      const npm = npmCommand();
      const result = await runTool({
        command: npm.command,
        args: [...npm.args, 'ci', '--omit=dev', '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=warn',
          ...(scripts ? [] : ['--ignore-scripts'])],
        cwd: out,
        // The cache beside the entries (builds.ts owns its size); the registry as the operator's environment says.
        env: {
          npm_config_cache: path.join(cacheRoot, 'npm'),
          ...(process.env.npm_config_registry && { npm_config_registry: process.env.npm_config_registry }),
        },
      });
      if (!result.ok) throw new Error(toolFailure(`npm ci in ${dir}`, result, /ERR!|error/i));
      fs.mkdirSync(path.join(out, 'node_modules'), { recursive: true }); // a lock with nothing to install
      return `installed ${installedPackages(path.join(out, 'node_modules'))} with npm ci`;
    },
  };
  return plan;
}

/** "3 packages (a@1.0.0, b@2.1.0, c@0.3.1)", from the hidden lock file npm ci writes into node_modules. */
function installedPackages(modules: string): string {
  let packages: Record<string, { version?: string }> = {};
  try {
    packages = (JSON.parse(fs.readFileSync(path.join(modules, '.package-lock.json'), 'utf8')) as { packages?: typeof packages }).packages ?? {};
  } catch {
    // none written: nothing was installed
  }
  const names = Object.entries(packages).map(([where, p]) => `${where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${p.version ?? '?'}`);
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, and ${names.length - 5} more` : '');
  return `${names.length} package${names.length === 1 ? '' : 's'}${names.length > 0 ? ` (${shown})` : ''}`;
}
