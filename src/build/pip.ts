// Python dependencies: a function folder (`path`) holding a requirements.txt gets its packages
// from `pip install --target`, with the sandbox's own interpreter (/usr/bin/python3), so compiled
// wheels match the python that imports them. Every requirement must be pinned (name==version,
// hashes optional): the cache is keyed by this file's text, so a floating version would never be
// looked at again. The index is the operator's: --pip-index-url, or --pip-find-links, a folder of
// wheels (with no index URL, pip then looks nowhere else: an offline install). Only wheels are
// installed unless the row allows scripts (`"dependencies": {"scripts": true}`): building a
// source package runs its setup code. The sandbox sees the packages at /deps, which the python
// host puts on sys.path.
import fs from 'node:fs';
import path from 'node:path';
import type { FunctionConfig } from '../protocol/messages.js';
import { hashOf, type BuildSettings, type Plan, type Planned } from './recipe.js';
import { runTool, toolFailure } from './tool.js';

export const REQUIREMENTS = 'requirements.txt';
export const SANDBOX_PYTHON = '/usr/bin/python3';

/** name[extras]==version [; marker] [--hash=algo:hex …]: PEP 508 names, == or === pins. */
const PINNED = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\s*\[[A-Za-z0-9._,\s-]*\])?\s*===?\s*[A-Za-z0-9.*+!_-]+\s*(?:;[^#]*?)?(?:\s+--hash=[a-z0-9]+:[0-9a-fA-F]+)*$/;

/** Every line of requirements.txt that is not a pinned requirement, as problems naming the line. */
export function requirementProblems(text: string, file: string): string[] {
  const problems: string[] = [];
  // A backslash at the end of a line continues it (pip's rule), as --hash options often do.
  const logical: Array<{ line: number; text: string }> = [];
  let pending: { line: number; text: string } | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const continued = raw.endsWith('\\');
    const part = continued ? raw.slice(0, -1) : raw;
    pending = pending ? { line: pending.line, text: `${pending.text} ${part}` } : { line: i + 1, text: part };
    if (!continued) {
      logical.push(pending);
      pending = undefined;
    }
  });
  if (pending) logical.push(pending);
  for (const { line, text: whole } of logical) {
    const req = whole.replace(/(^|\s)#.*$/, '').trim();
    if (req === '') continue;
    if (req.startsWith('-')) {
      problems.push(`${file} line ${line}: ${JSON.stringify(req)} is a pip option; only requirements are read (the index is the gateway's --pip-index-url or --pip-find-links)`);
    } else if (!PINNED.test(req)) {
      problems.push(`${file} line ${line}: ${JSON.stringify(req)} is not pinned: write name==version (the cache is keyed by this file, so a floating version would never update)`);
    }
  }
  return problems;
}

export function pipPlan(config: FunctionConfig, settings: BuildSettings): Planned {
  if (config.path === undefined || !fs.statSync(config.path).isDirectory()) return undefined;
  const file = path.join(config.path, REQUIREMENTS);
  if (!fs.existsSync(file)) return undefined;
  const text = fs.readFileSync(file, 'utf8');
  const problems = requirementProblems(text, file);
  if (problems.length > 0) return { problem: problems.join('; ') };
  if (text.split(/\r?\n/).every((l) => l.replace(/#.*$/, '').trim() === '')) return undefined; // nothing required
  const scripts = config.dependencies?.scripts === true;
  const source = [
    ...(settings.pipIndexUrl ? ['--index-url', settings.pipIndexUrl] : []),
    ...(settings.pipFindLinks ? ['--find-links', settings.pipFindLinks] : []),
    // A wheel folder and no index: that folder only, never the network.
    ...(settings.pipFindLinks && !settings.pipIndexUrl ? ['--no-index'] : []),
  ];
  const hash = hashOf([
    [REQUIREMENTS, text], ['source', source.join(' ')], ['scripts', String(scripts)], ['python', pythonVersion()],
  ]);
  const plan: Plan = {
    kind: 'pip',
    hash,
    what: `pip install --target (${REQUIREMENTS}${settings.pipFindLinks ? `, wheels from ${settings.pipFindLinks}` : ''}${scripts ? ', source builds allowed' : ''})`,
    async build(out, cacheRoot) {
      fs.writeFileSync(path.join(out, REQUIREMENTS), text);
      const result = await runTool({
        command: SANDBOX_PYTHON,
        args: ['-m', 'pip', 'install', '--target', path.join(out, 'site'), '--requirement', REQUIREMENTS,
          '--no-input', '--disable-pip-version-check', '--no-warn-script-location', '--cache-dir', path.join(cacheRoot, 'pip'),
          ...(scripts ? [] : ['--only-binary=:all:']), ...source],
        cwd: out,
      });
      if (!result.ok) throw new Error(toolFailure(`pip install -r ${file}`, result, /ERROR|error:/));
      const installed = /Successfully installed (.+)$/m.exec(result.output)?.[1]?.trim();
      return installed ? `installed ${installed} with pip` : 'pip installed nothing new';
    },
  };
  return plan;
}

let version: string | undefined;
/** The sandbox python's version (compiled wheels are per version); read once. */
function pythonVersion(): string {
  if (version === undefined) {
    try {
      // The interpreter's path names its version on Debian (/usr/bin/python3 → python3.11).
      version = fs.realpathSync(SANDBOX_PYTHON);
    } catch {
      version = 'absent';
    }
  }
  return version;
}
