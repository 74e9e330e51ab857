import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { materialize, nodeModuleExtension } from '../../workers/function-code.js';
import type { FunctionConfig } from '../../src/protocol/messages.js';

const made: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

const base: FunctionConfig = { runtime: 'node', mode: 'process', timeoutMs: 1000, memoryMb: 128, maxConcurrency: 10, minWarm: 0, env: {}, auth: 'none' };

describe('function code', () => {
  it('tells CommonJS from ES modules', () => {
    expect(nodeModuleExtension('exports.handler = async () => 1')).toBe('.cjs');
    expect(nodeModuleExtension('module.exports = { handler }')).toBe('.cjs');
    expect(nodeModuleExtension('export default { fetch() {} }')).toBe('.mjs');
    expect(nodeModuleExtension('import x from "y"\nexport const handler = x')).toBe('.mjs');
  });

  it('writes inline code once per content, world-readable', () => {
    const dir = tempDir('faas-code-');
    const a = materialize({ ...base, code: 'export default {}' }, dir);
    const b = materialize({ ...base, code: 'export default {}' }, dir);
    expect(a).toEqual(b);
    expect(a.entry).toBe('/fn/index.mjs');
    const file = path.join(a.hostPath, 'index.mjs');
    expect(fs.readFileSync(file, 'utf8')).toBe('export default {}');
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    const py = materialize({ ...base, runtime: 'python', code: 'def handle(r): return "x"' }, dir);
    expect(py.entry).toBe('/fn/index.py');
  });

  it('mounts a path file or folder and names a folder without an entry', () => {
    const dir = tempDir('faas-path-');
    fs.writeFileSync(path.join(dir, 'fn.py'), '');
    expect(materialize({ ...base, runtime: 'python', path: path.join(dir, 'fn.py') }, dir)).toEqual(
      { hostPath: path.join(dir, 'fn.py'), mountPath: '/fn/fn.py', entry: '/fn/fn.py', extra: [] });
    expect(() => materialize({ ...base, path: dir }, dir)).toThrow(/without an entry file \(one of index.mjs, index.js, index.cjs\)/);
    fs.writeFileSync(path.join(dir, 'index.js'), '');
    expect(materialize({ ...base, path: dir }, dir).entry).toBe('/fn/index.js');
  });

  it('mounts what the gateway built: node_modules at /node_modules, python packages at /deps, a Go program as the code', () => {
    const dir = tempDir('faas-built-');
    fs.writeFileSync(path.join(dir, 'index.js'), '');
    expect(materialize({ ...base, path: dir, built: { kind: 'npm', dir: '/cache/npm-1' } }, dir).extra)
      .toEqual([{ hostPath: '/cache/npm-1/node_modules', mountPath: '/node_modules' }]);
    fs.writeFileSync(path.join(dir, 'main.py'), '');
    expect(materialize({ ...base, runtime: 'python', path: dir, built: { kind: 'pip', dir: '/cache/pip-1' } }, dir).extra)
      .toEqual([{ hostPath: '/cache/pip-1/site', mountPath: '/deps' }]);
    expect(materialize({ ...base, runtime: 'go', code: 'package function', built: { kind: 'go', dir: '/cache/go-1' } }, dir))
      .toEqual({ hostPath: '/cache/go-1/bin', mountPath: '/fn', entry: '/fn/function', extra: [] });
    expect(() => materialize({ ...base, runtime: 'go', code: 'package function' }, dir)).toThrow(/has not been compiled/);
  });
});
