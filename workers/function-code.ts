// Puts a function's code where its sandbox can mount it read-only. Inline `code` is written
// once per content hash under RUN_DIR/code; a `path` is mounted where it is (it must be
// readable by the sandbox user, uid 65534). What the gateway built for it (config.built,
// src/build/) is mounted too: node_modules at /node_modules (Node's resolution from /fn reaches
// it), python packages at /deps (the python host puts it on sys.path), and a Go function's
// compiled program as /fn/function, which is its runtime host.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACT_SUBDIR, type FunctionConfig } from '../src/protocol/messages.js';

export interface FunctionCode {
  /** Host path to mount (file or directory). */
  readonly hostPath: string;
  /** Where it appears in the sandbox. */
  readonly mountPath: string;
  /** The file the runtime host loads, inside the sandbox (a Go function: the program it runs). */
  readonly entry: string;
  /** More read-only mounts: what the gateway built for the function. */
  readonly extra: readonly Mount[];
}

export interface Mount {
  readonly hostPath: string;
  readonly mountPath: string;
}

/** Where a build's artifact appears in the sandbox (Go's is the code itself). */
const BUILT_MOUNT = { npm: '/node_modules', pip: '/deps' } as const;

export const NODE_DIR_ENTRIES = ['index.mjs', 'index.js', 'index.cjs'];
const PYTHON_DIR_ENTRIES = ['main.py', 'handler.py'];

/** ES module or CommonJS? Lambda code is often CommonJS (exports.handler = …). */
export function nodeModuleExtension(code: string): '.mjs' | '.cjs' {
  const esm = /^\s*(import\s|export\s)/m.test(code);
  const cjs = /\b(module\.exports|exports\.[A-Za-z_$][\w$]*\s*=|require\s*\()/.test(code);
  return cjs && !esm ? '.cjs' : '.mjs';
}

export function materialize(config: FunctionConfig, codeDir: string): FunctionCode {
  const built = config.built;
  if (config.runtime === 'go') {
    if (built?.kind === 'go') return { hostPath: path.join(built.dir, ARTIFACT_SUBDIR.go), mountPath: '/fn', entry: '/fn/function', extra: [] };
    // A compiled program given as `path` (the gateway builds everything else before routing a call).
    if (config.path !== undefined && fs.statSync(config.path).isFile()) {
      const base = path.basename(config.path);
      return { hostPath: config.path, mountPath: `/fn/${base}`, entry: `/fn/${base}`, extra: [] };
    }
    throw new Error('this go function has not been compiled: the gateway builds it before it routes calls (GET /routes shows the build)');
  }
  const extra: Mount[] = built && built.kind !== 'go' ? [{ hostPath: path.join(built.dir, ARTIFACT_SUBDIR[built.kind]), mountPath: BUILT_MOUNT[built.kind] }] : [];
  return { ...source(config, codeDir), extra };
}

function source(config: FunctionConfig, codeDir: string): Omit<FunctionCode, 'extra'> {
  if (config.code !== undefined) {
    const ext = config.runtime === 'python' ? '.py' : config.runtime === 'wasm' ? '.wasm' : nodeModuleExtension(config.code);
    const hash = createHash('sha256').update(config.runtime).update('\0').update(config.code).digest('hex').slice(0, 24);
    const dir = path.join(codeDir, hash);
    const file = path.join(dir, `index${ext}`);
    if (!fs.existsSync(file)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, config.runtime === 'wasm' ? Buffer.from(config.code, 'base64') : config.code, { mode: 0o644 });
      fs.renameSync(tmp, file);
    }
    return { hostPath: dir, mountPath: '/fn', entry: `/fn/index${ext}` };
  }
  const hostPath = config.path!;
  const stat = fs.statSync(hostPath); // throws ENOENT with the path in the message
  if (stat.isFile()) {
    const base = path.basename(hostPath);
    return { hostPath, mountPath: `/fn/${base}`, entry: `/fn/${base}` };
  }
  if (config.runtime === 'wasm') throw new Error(`${hostPath} is a folder; a WebAssembly function's path must be the module's file`);
  const candidates = config.runtime === 'python' ? PYTHON_DIR_ENTRIES : NODE_DIR_ENTRIES;
  const found = candidates.find((name) => fs.existsSync(path.join(hostPath, name)));
  if (!found) throw new Error(`${hostPath} is a folder without an entry file (one of ${candidates.join(', ')})`);
  return { hostPath, mountPath: '/fn', entry: `/fn/${found}` };
}
