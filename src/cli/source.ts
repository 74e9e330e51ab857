// What `faas deploy` stores for FILE|DIR: a real absolute "path", or with --inline the file's
// text as "code". The entry of a folder is found by the worker's own rule (workers/function-code.ts
// materialize(); a unit test keeps the two lists in step), and code the sandbox user could not
// read is refused here rather than at the first call.
import fs from 'node:fs';
import path from 'node:path';
import { isElf } from '../build/go.js';
import { LOCK_FILES } from '../build/npm.js';
import { REQUIREMENTS } from '../build/pip.js';

/** Entry files of a folder, in the order the worker tries them (workers/function-code.ts). */
export const ENTRY_FILES: Readonly<Record<'node' | 'python', readonly string[]>> = {
  node: ['index.mjs', 'index.js', 'index.cjs'],
  python: ['main.py', 'handler.py'],
};

export const SANDBOX_UID = 65534;
const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

export interface Source {
  readonly path?: string;
  readonly code?: string;
  /** The file the runtime loads (the path itself, or a folder's entry). */
  readonly entry: string;
  /** Things the operator should know that are not problems (which entry of several). */
  readonly notes: readonly string[];
}

export function resolveSource(input: string, runtime: string, mode: string | undefined, inline: boolean):
  { readonly source?: Source; readonly problems: readonly string[] } {
  const label = `FILE ${JSON.stringify(input)}`;
  let stat: fs.Stats;
  let real: string;
  try {
    stat = fs.statSync(input);
    real = fs.realpathSync(input);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
    return { problems: [`${label} ${why}${path.isAbsolute(input) ? '' : ` (looked for ${path.resolve(input)})`}`] };
  }
  if (!stat.isFile() && !stat.isDirectory()) return { problems: [`${label} must be a file or a folder`] };
  const notes: string[] = [];
  let entry = real;
  let stored = real;
  if (stat.isDirectory()) {
    if (inline) return { problems: [`--inline needs a FILE, and ${JSON.stringify(input)} is a folder (inline code is one file; deploy the folder without --inline)`] };
    const found = folderEntry(real, runtime, input);
    if ('problem' in found) return { problems: [found.problem] };
    if (found.note) notes.push(found.note);
    entry = found.entry;
    if (runtime === 'wasm') stored = found.entry; // the worker runs a module file, never a folder
  }
  if (runtime === 'go' && stat.isFile() && !entry.endsWith('.go') && !isElf(entry)) {
    return { problems: [`${label} is neither Go source (a .go file) nor a compiled program (an ELF file); a Go module is deployed as its folder`] };
  }
  if (runtime === 'go' && inline && !entry.endsWith('.go')) return { problems: [`--inline needs a .go FILE for runtime go (got ${JSON.stringify(input)})`] };
  if (runtime === 'wasm' && !isWasm(entry)) {
    return { problems: [`${label} is not a WebAssembly module (it does not start with "\\0asm"); assemble a .wat file first (examples/wasm/build.mjs does)`] };
  }
  if (inline) {
    const bytes = fs.readFileSync(entry);
    return { source: { code: runtime === 'wasm' ? bytes.toString('base64') : bytes.toString('utf8'), entry, notes }, problems: [] };
  }
  // A module in a worker thread is read by the worker itself; everything else by the sandbox user.
  const threaded = runtime === 'wasm' && (mode === undefined || mode === 'thread');
  const unreadable = threaded ? undefined : sandboxCannotRead(stored, entry);
  if (unreadable) return { problems: [`${label}: the sandbox user (uid ${SANDBOX_UID}) cannot read it: ${unreadable}; or use --inline`] };
  return { source: { path: stored, entry, notes }, problems: [] };
}

function folderEntry(dir: string, runtime: string, input: string): { entry: string; note?: string } | { problem: string } {
  const label = `DIR ${JSON.stringify(input)}`;
  if (runtime === 'wasm') {
    const modules = fs.readdirSync(dir).filter((n) => n.endsWith('.wasm') && fs.statSync(path.join(dir, n)).isFile()).sort();
    if (modules.length !== 1) {
      return { problem: `${label} must hold exactly one .wasm file for runtime wasm (it holds ${modules.length === 0 ? 'none' : modules.join(', ')}); give the module's FILE` };
    }
    return { entry: path.join(dir, modules[0]!), note: `${label}: deploying its module ${modules[0]}` };
  }
  if (runtime === 'go') {
    if (!fs.existsSync(path.join(dir, 'go.mod'))) return { problem: `${label} has no go.mod: a go function's folder is a module (run go mod init NAME there)` };
    const files = fs.readdirSync(dir).filter((n) => n.endsWith('.go'));
    return { entry: dir, note: `${label}: the gateway compiles the module (${files.length} .go file${files.length === 1 ? '' : 's'} at its root) with go build before serving it` };
  }
  if (runtime !== 'node' && runtime !== 'python') return { entry: dir }; // the runtime's own problem is reported
  const candidates = ENTRY_FILES[runtime];
  const present = candidates.filter((n) => fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.isFile());
  if (present.length === 0) return { problem: `${label} has no entry file: a ${runtime} function's folder needs one of ${candidates.join(', ')}` };
  const notes = [
    ...(present.length > 1 ? [`${label} holds ${present.join(' and ')}: the gateway loads ${present[0]} (the first of ${candidates.join(', ')})`] : []),
    ...dependencyNote(dir, runtime, label),
  ];
  return { entry: path.join(dir, present[0]!), ...(notes.length > 0 && { note: notes.join('; ') }) };
}

/** What the gateway will install for a folder (src/build/npm.ts, pip.ts), said before it does. */
function dependencyNote(dir: string, runtime: 'node' | 'python', label: string): string[] {
  const has = (name: string): boolean => fs.existsSync(path.join(dir, name));
  if (runtime === 'python') return has(REQUIREMENTS) ? [`${label}: the gateway installs its ${REQUIREMENTS} with pip before serving it`] : [];
  if (!has('package.json')) return [];
  if (has('node_modules')) return [`${label} brings its own node_modules: used as it is, nothing installed`];
  const lock = LOCK_FILES.find(has);
  return lock ? [`${label}: the gateway installs its dependencies with npm ci (${lock}) before serving it`] : [];
}

function isWasm(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    return fs.readSync(fd, head, 0, 4, 0) === 4 && head.equals(WASM_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Why uid 65534 could not read `target` (and a folder's `entry`): every folder above needs o+x
 * (search), the code o+r, a folder o+rx. Undefined when it can. Owners other than 65534 are
 * "others" to it; ACLs are not looked at.
 */
export function sandboxCannotRead(target: string, entry: string): string | undefined {
  const others = (p: string, bits: number, need: string): string | undefined => {
    const st = fs.statSync(p);
    if (st.uid === SANDBOX_UID || (st.mode & bits) === bits) return undefined;
    return `${p} is mode ${(st.mode & 0o777).toString(8)} (needs ${need}): chmod ${need} ${p}`;
  };
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const problem = others(dir, 0o001, 'o+x');
    if (problem) return problem;
    if (dir === path.dirname(dir)) break;
  }
  const isDir = fs.statSync(target).isDirectory();
  return others(target, isDir ? 0o005 : 0o004, isDir ? 'o+rx' : 'o+r') ?? (entry !== target ? others(entry, 0o004, 'o+r') : undefined);
}
