// The gateway's builds (src/build/), without running a tool: which rows need a build and why a
// row's files cannot be built (plan.ts and its recipes), the content hash that names a cache
// entry, the requirements.txt rule, the config and states prepare() hands the route store, and
// the cache's bound (evict). Installs and compiles themselves run in
// test/integration/dependencies.test.ts and go.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Builds } from '../../src/build/builds.js';
import { planBuild } from '../../src/build/plan.js';
import { requirementProblems } from '../../src/build/pip.js';
import type { FunctionConfig } from '../../src/protocol/messages.js';
import { parseFunctionConfig } from '../../src/routes/function-config.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-builds-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const config = (v: Record<string, unknown>): FunctionConfig => {
  const parsed = parseFunctionConfig(JSON.stringify(v));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.config;
};
const folder = (name: string, files: Record<string, string>): string => {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
  return d;
};
const lock = JSON.stringify({ lockfileVersion: 3, packages: { '': { dependencies: { ms: '2.1.3' } } } });
const manifest = JSON.stringify({ name: 'f', dependencies: { ms: '2.1.3' } });

describe('requirements.txt', () => {
  it('takes pinned requirements, extras, markers, hashes over continued lines, comments and blank lines', () => {
    const text = [
      '# a comment', '', 'requests==2.31.0', 'Flask[async] == 3.0.0 ; python_version >= "3.8"', 'numpy===1.26.4  # exact',
      'urllib3==2.2.1 \\', '    --hash=sha256:450b20ec296a467077128bff42b73080516e71b56ff59a60a02bef2232c4fa9d',
    ].join('\n');
    expect(requirementProblems(text, 'r.txt')).toEqual([]);
  });

  it('names each line that is not pinned, and each pip option, by its number', () => {
    expect(requirementProblems('requests>=2\n\n-r other.txt\nflask\n', 'r.txt')).toEqual([
      'r.txt line 1: "requests>=2" is not pinned: write name==version (the cache is keyed by this file, so a floating version would never update)',
      'r.txt line 3: "-r other.txt" is a pip option; only requirements are read (the index is the gateway\'s --pip-index-url or --pip-find-links)',
      'r.txt line 4: "flask" is not pinned: write name==version (the cache is keyed by this file, so a floating version would never update)',
    ]);
  });
});

describe('planBuild', () => {
  it('needs nothing for inline node or python code, a node folder without dependencies, or one that brings node_modules', () => {
    expect(planBuild(config({ runtime: 'node', code: 'x' }))).toBeUndefined();
    expect(planBuild(config({ runtime: 'python', code: 'x' }))).toBeUndefined();
    expect(planBuild(config({ runtime: 'node', path: folder('a', { 'index.mjs': '', 'package.json': '{"name":"a"}' }) }))).toBeUndefined();
    const vendored = folder('b', { 'index.mjs': '', 'package.json': manifest });
    fs.mkdirSync(path.join(vendored, 'node_modules'));
    expect(planBuild(config({ runtime: 'node', path: vendored }))).toBeUndefined();
  });

  it('wants the lock file with dependencies, and valid JSON in both files, naming the file', () => {
    const noLock = folder('c', { 'package.json': manifest });
    expect(planBuild(config({ runtime: 'node', path: noLock }))).toEqual({
      problem: `${path.join(noLock, 'package.json')} has dependencies but the folder has no package-lock.json or npm-shrinkwrap.json: ` +
        'the gateway installs with npm ci, which needs the lock file; run npm install there once and deploy again',
    });
    const badLock = folder('d', { 'package.json': manifest, 'package-lock.json': '{' });
    expect((planBuild(config({ runtime: 'node', path: badLock })) as { problem: string }).problem).toMatch(/package-lock\.json is not valid JSON/);
    const badManifest = folder('e', { 'package.json': '{x' });
    expect((planBuild(config({ runtime: 'node', path: badManifest })) as { problem: string }).problem).toMatch(/package\.json is not valid JSON/);
  });

  it('names an entry by what the result depends on: the lock, the manifest and whether scripts run, not the folder', () => {
    const one = folder('f', { 'package.json': manifest, 'package-lock.json': lock });
    const two = folder('g', { 'package.json': manifest, 'package-lock.json': lock });
    const hash = (p: string, scripts = false): string => (planBuild(config({ runtime: 'node', path: p, dependencies: { scripts } })) as { hash: string }).hash;
    expect(hash(one)).toBe(hash(two));
    expect(hash(one, true)).not.toBe(hash(one));
    fs.writeFileSync(path.join(two, 'package-lock.json'), lock.replace('2.1.3', '2.1.2'));
    expect(hash(two)).not.toBe(hash(one));
  });

  it('plans pip for a folder with pinned requirements, and refuses unpinned ones', () => {
    const ok = folder('h', { 'main.py': '', 'requirements.txt': 'tinyfmt==1.0.0\n' });
    expect(planBuild(config({ runtime: 'python', path: ok }), { goProxy: 'off', pipFindLinks: '/wheels' })).toMatchObject({
      kind: 'pip', what: 'pip install --target (requirements.txt, wheels from /wheels)',
    });
    const loose = folder('i', { 'main.py': '', 'requirements.txt': 'tinyfmt\n' });
    expect((planBuild(config({ runtime: 'python', path: loose })) as { problem: string }).problem).toContain('line 1: "tinyfmt" is not pinned');
  });

  it('wants a go folder to be a module, and takes a prebuilt ELF as it is', () => {
    const noMod = folder('j', { 'f.go': 'package function' });
    expect((planBuild(config({ runtime: 'go', path: noMod })) as { problem: string }).problem).toMatch(/is a folder without go\.mod/);
    const elf = path.join(dir, 'prog');
    fs.writeFileSync(elf, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));
    expect(planBuild(config({ runtime: 'go', path: elf }))).toBeUndefined();
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'hello');
    expect((planBuild(config({ runtime: 'go', path: text })) as { problem: string }).problem).toMatch(/must be a folder with go\.mod, one \.go file, or a compiled program/);
  });
});

describe('Builds', () => {
  const quiet = (): void => {};

  it('hands a row that needs no build its config as it is, and says why a row cannot be built', () => {
    const builds = new Builds({ dir: path.join(dir, 'cache'), maxBytes: 1 << 30, settings: { goProxy: 'off' }, log: quiet, onSettled: quiet });
    const plain = config({ runtime: 'node', code: 'x' });
    expect(builds.prepare('GET:/a', plain, true)).toEqual({ config: plain });
    const noLock = config({ runtime: 'node', path: folder('k', { 'package.json': manifest }) });
    expect(builds.prepare('GET:/b', noLock, true)).toMatchObject({ error: expect.stringContaining('needs the lock file') });
  });

  it('serves an entry found in the cache at once (a restart), naming it in the config, and logs the hit once', () => {
    const cache = path.join(dir, 'cache');
    const lines: Array<Record<string, unknown>> = [];
    const builds = new Builds({ dir: cache, maxBytes: 1 << 30, settings: { goProxy: 'off' }, log: (l) => { lines.push(l); }, onSettled: quiet });
    const fn = config({ runtime: 'node', path: folder('l', { 'package.json': manifest, 'package-lock.json': lock }) });
    const { hash } = planBuild(fn) as { hash: string };
    const entry = path.join(cache, `npm-${hash}`);
    fs.mkdirSync(path.join(entry, 'node_modules'), { recursive: true });
    fs.writeFileSync(path.join(entry, 'built.json'), JSON.stringify({ kind: 'npm', what: 'npm ci', summary: 'installed 1 package', ms: 5, builtAt: 1, bytes: 10 }));
    const first = builds.prepare('GET:/c', fn, true);
    expect(first).toEqual({ config: { ...fn, built: { kind: 'npm', dir: entry } } });
    builds.prepare('GET:/c', config({ runtime: 'node', path: fn.path }), true);
    expect(lines.filter((l) => l.msg === 'build cache hit')).toHaveLength(1);
    expect(builds.report({ kind: 'npm', dir: entry })).toMatchObject({ summary: 'installed 1 package' });
  });

  it('past its bound, evicts entries no route uses, least recently used first, and never one in use', () => {
    const cache = path.join(dir, 'cache');
    const builds = new Builds({ dir: cache, maxBytes: 2_500_000, settings: { goProxy: 'off' }, log: quiet, onSettled: quiet });
    const entry = (name: string, bytes: number, usedSecondsAgo: number): string => {
      const d = path.join(cache, name);
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'built.json'), JSON.stringify({ kind: 'npm', what: '', summary: '', ms: 0, builtAt: 0, bytes }));
      const at = new Date(Date.now() - usedSecondsAgo * 1000);
      fs.utimesSync(path.join(d, 'built.json'), at, at);
      return d;
    };
    const oldest = entry('npm-a', 1_000_000, 300);
    const older = entry('npm-b', 1_000_000, 200);
    const inUse = entry('npm-c', 1_000_000, 400);
    const newest = entry('npm-d', 1_000_000, 10);
    builds.evict(new Set([inUse]));
    // 4 MB against 2.5 MB (and the tools' empty caches): the two oldest unused go, in that order.
    expect([oldest, older, inUse, newest].map((d) => fs.existsSync(d))).toEqual([false, false, true, true]);
    expect(builds.stats()).toMatchObject({ entries: 2, bytes: 2_000_000, building: 0 });
  });
});
