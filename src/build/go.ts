// Go functions: `package function` with `func Handle(w http.ResponseWriter, r *http.Request)`
// (OpenFaaS's golang-http shape; the route's `handler` may name another function of that type),
// inline (`code`, one file) or a folder with go.mod (`path`, any number of files, its own module
// path). The gateway compiles each once per source hash into a static program (CGO_ENABLED=0)
// that is the runtime host itself: the host's files (workers/runtime/go-host/, package main)
// go into a `faashost` folder of the module, beside one generated file naming the handler, and
// `go build` links them with the function. The program speaks the frame protocol on fd 3 like
// the node and python hosts, in the same sandbox. No network at build time: modules come from
// vendor/ or the local module cache, unless the operator gives --go-proxy. A `path` to an ELF
// file is a program built already (README "Go") and runs as it is.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionConfig } from '../protocol/messages.js';
import { hashOf, type BuildSettings, type Plan, type Planned } from './recipe.js';
import { builderDir, giveToBuilder, runTool, toolFailure } from './tool.js';

/** The folder of the generated host inside the module: a name of ours, refused in a function's folder. */
export const HOST_PACKAGE = 'faashost';
/** The compiled program in the artifact's bin/ folder. */
export const PROGRAM = 'function';
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
/** Left out of a function folder's copy and hash. */
const SKIPPED = new Set(['.git', '.hg', '.svn']);

/** The go-host sources, from dist/src/build/ or from src/build/ (tests run the sources). */
export const GO_HOST_DIR = ['../../../workers/runtime/go-host/', '../../workers/runtime/go-host/']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((dir) => fs.existsSync(dir)) ?? fileURLToPath(new URL('../../../workers/runtime/go-host/', import.meta.url));

/** Debian's go (golang-go) or one on PATH; undefined when this host has none. */
export function findGo(): string | undefined {
  for (const candidate of ['/usr/bin/go', '/usr/local/go/bin/go', '/usr/lib/go/bin/go']) if (fs.existsSync(candidate)) return candidate;
  const found = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : undefined;
}

let goVersion: string | undefined;
function versionOf(go: string): string {
  goVersion ??= spawnSync(go, ['env', 'GOVERSION'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  return goVersion;
}

export function isElf(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    return fs.readSync(fd, head, 0, 4, 0) === 4 && head.equals(ELF_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

interface Source {
  /** Relative path → contents. */
  readonly files: Map<string, Buffer>;
  /** The import path of the function's package: the module's root. */
  readonly module: string;
  readonly label: string;
}

/** The function's source as files, or why it cannot be built; undefined for a prebuilt program. */
function readSource(config: FunctionConfig): Source | undefined | { problem: string } {
  if (config.code !== undefined) {
    return { files: new Map([['go.mod', Buffer.from('module function\n\ngo 1.19\n')], ['function.go', Buffer.from(config.code)]]), module: 'function', label: 'the inline code' };
  }
  const p = config.path!;
  const stat = fs.statSync(p);
  if (stat.isFile()) {
    if (isElf(p)) return undefined;
    if (p.endsWith('.go')) return { files: new Map([['go.mod', Buffer.from('module function\n\ngo 1.19\n')], ['function.go', fs.readFileSync(p)]]), module: 'function', label: p };
    return { problem: `v.path ${JSON.stringify(p)} of a go function must be a folder with go.mod, one .go file, or a compiled program (an ELF file)` };
  }
  const modFile = path.join(p, 'go.mod');
  if (!fs.existsSync(modFile)) return { problem: `v.path ${JSON.stringify(p)} is a folder without go.mod: a go function's folder is a module (go mod init NAME there)` };
  const module = /^\s*module\s+("?)([^\s"]+)\1\s*$/m.exec(fs.readFileSync(modFile, 'utf8'))?.[2];
  if (!module) return { problem: `${modFile} has no module line (module NAME)` };
  if (fs.existsSync(path.join(p, HOST_PACKAGE))) return { problem: `v.path ${JSON.stringify(p)} holds a folder named ${HOST_PACKAGE}, which the gateway's build writes: rename it` };
  const files = new Map<string, Buffer>();
  const walk = (dir: string, rel: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (SKIPPED.has(entry.name)) continue;
      const full = path.join(dir, entry.name);
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(full, relPath);
      else if (entry.isFile()) files.set(relPath, fs.readFileSync(full));
    }
  };
  walk(p, '');
  return { files, module, label: p };
}

export function goPlan(config: FunctionConfig, settings: BuildSettings): Planned {
  const source = readSource(config);
  if (source === undefined || 'problem' in source) return source;
  const go = findGo();
  if (go === undefined) return { problem: 'v.runtime "go" is compiled by the gateway with Go, which this host does not have: install the Debian package golang-go (or deploy a compiled program as "path")' };
  const handler = config.handler ?? 'Handle';
  const host = fs.readdirSync(GO_HOST_DIR).filter((n) => n.endsWith('.go') && !n.endsWith('_test.go')).sort();
  const hostFiles = new Map(host.map((n) => [n, fs.readFileSync(path.join(GO_HOST_DIR, n))]));
  const entry = entryFile(source.module, handler);
  const hash = hashOf([
    ...[...source.files].map(([name, bytes]): [string, Buffer] => [`src/${name}`, bytes]),
    ...[...hostFiles].map(([name, bytes]): [string, Buffer] => [`host/${name}`, bytes]),
    ['entry', entry], ['go', versionOf(go)], ['proxy', settings.goProxy],
  ]);
  const goFiles = [...source.files.keys()].filter((n) => n.endsWith('.go') && !n.startsWith('vendor/')).length;
  const plan: Plan = {
    kind: 'go',
    hash,
    what: `go build (${goFiles} file${goFiles === 1 ? '' : 's'}, handler ${handler})`,
    async build(out, cacheRoot) {
      const src = path.join(out, 'src');
      for (const [name, bytes] of source.files) write(path.join(src, name), bytes);
      for (const [name, bytes] of hostFiles) write(path.join(src, HOST_PACKAGE, name), bytes);
      write(path.join(src, HOST_PACKAGE, 'entry.go'), Buffer.from(entry));
      giveToBuilder(src);
      builderDir(path.join(out, 'bin'));
      const started = performance.now();
      const result = await runTool({
        command: go,
        args: ['build', '-trimpath', '-ldflags=-s -w', '-o', path.join(out, 'bin', PROGRAM), `./${HOST_PACKAGE}`],
        cwd: src,
        env: {
          HOME: out, CGO_ENABLED: '0', GOPROXY: settings.goProxy, GOTOOLCHAIN: 'local', GOTELEMETRY: 'off',
          GOFLAGS: fs.existsSync(path.join(src, 'vendor')) ? '-mod=vendor' : '-mod=mod',
          GOCACHE: path.join(cacheRoot, 'go-build'), GOPATH: path.join(cacheRoot, 'gopath'),
          ...(settings.goProxy === 'off' && { GOSUMDB: 'off' }),
        },
      });
      if (!result.ok) throw new Error(toolFailure(`go build of ${source.label}`, result, /\.go:\d+|cannot|undefined|error|missing|no required module/i) + handlerHint(result.output, handler));
      fs.rmSync(src, { recursive: true, force: true }); // the program is what is kept
      return `compiled ${goFiles} Go file${goFiles === 1 ? '' : 's'} with ${versionOf(go)} in ${((performance.now() - started) / 1000).toFixed(1)} s`;
    },
  };
  return plan;
}

/** The compiler's complaint about our generated entry.go, said in the author's terms. */
function handlerHint(output: string, handler: string): string {
  if (new RegExp(`entry\\.go:.*undefined: function\\.${handler}\\b`).test(output)) {
    return `\n(the function's package has no exported func ${handler}: write func ${handler}(w http.ResponseWriter, r *http.Request), or name another in the route's "handler")`;
  }
  if (/entry\.go:.*cannot use function\./.test(output)) return `\n(the handler must be func ${handler}(w http.ResponseWriter, r *http.Request), as net/http's HandlerFunc)`;
  return '';
}

/** The generated file that hands the function to the host (userHandler, go-host's main). */
function entryFile(module: string, handler: string): string {
  return `// Generated by the gateway (src/build/go.ts): the function this program serves.\npackage main\n\nimport (\n\t"net/http"\n\n\tfunction ${JSON.stringify(module)}\n)\n\n` +
    `var userHandler http.HandlerFunc = function.${handler}\n`;
}

function write(file: string, bytes: Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}
