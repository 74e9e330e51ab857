// Puts a function's code where its sandbox can mount it read-only. Inline `code` is written
// once per content hash under RUN_DIR/code; a `path` is mounted where it is (it must be
// readable by the sandbox user, uid 65534).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FunctionConfig } from '../src/protocol/messages.js';

export interface FunctionCode {
  /** Host path to mount (file or directory). */
  readonly hostPath: string;
  /** Where it appears in the sandbox. */
  readonly mountPath: string;
  /** The file the runtime host loads, inside the sandbox. */
  readonly entry: string;
}

export const NODE_DIR_ENTRIES = ['index.mjs', 'index.js', 'index.cjs'];
const PYTHON_DIR_ENTRIES = ['main.py', 'handler.py'];

/** ES module or CommonJS? Lambda code is often CommonJS (exports.handler = …). */
export function nodeModuleExtension(code: string): '.mjs' | '.cjs' {
  const esm = /^\s*(import\s|export\s)/m.test(code);
  const cjs = /\b(module\.exports|exports\.[A-Za-z_$][\w$]*\s*=|require\s*\()/.test(code);
  return cjs && !esm ? '.cjs' : '.mjs';
}

export function materialize(config: FunctionConfig, codeDir: string): FunctionCode {
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
