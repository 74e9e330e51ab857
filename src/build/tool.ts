// How the gateway runs a build tool (npm, pip, go): outside any sandbox, but never as root: when
// the gateway is root the tool runs as the sandbox user (uid 65534), in a folder of its own, with
// a cleared environment (PATH, HOME, LANG and what the recipe adds), a time limit, and the tail of
// its output kept for the row error. Installing a package runs code its authors wrote (npm's
// install scripts, a python source build, a go generate…), so it gets no more than the functions do
// on the host's filesystem.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The user builds run as when the gateway is root: the sandbox user. */
export const BUILD_UID = 65534;
/** A build past this is killed and its row gets an error. */
export const BUILD_TIMEOUT_MS = 10 * 60_000;
/** Output kept for an error message (the end of it: compilers and npm put the cause last, or near). */
const TAIL_BYTES = 8 * 1024;

export interface ToolResult {
  readonly ok: boolean;
  /** Exit status, or the signal that ended the tool ("timed out" when the limit did). */
  readonly exit: string;
  /** The last TAIL_BYTES of stdout and stderr, interleaved as they came. */
  readonly output: string;
}

export interface ToolRun {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** Added to PATH, HOME (cwd) and LANG. */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

const asRoot = process.getuid?.() === 0;

/** Who builds run as, for the start log. */
export function builderUser(): string {
  return asRoot ? `uid ${BUILD_UID} (the gateway is root; builds never are)` : `uid ${process.getuid?.()} (the gateway's own user)`;
}

/** Makes `dir` (and any parents) a folder the builder may write to. */
export function builderDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (asRoot) fs.chownSync(dir, BUILD_UID, BUILD_UID);
}

/** Hands a tree the gateway wrote over to the builder (a copied Go module, say). */
export function giveToBuilder(root: string): void {
  if (!asRoot) return;
  const walk = (p: string): void => {
    fs.lchownSync(p, BUILD_UID, BUILD_UID);
    if (fs.lstatSync(p).isDirectory()) for (const name of fs.readdirSync(p)) walk(path.join(p, name));
  };
  walk(root);
}

export function runTool(run: ToolRun): Promise<ToolResult> {
  return new Promise((resolve) => {
    let tail = '';
    const keep = (chunk: Buffer): void => {
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    const child = spawn(run.command, run.args, {
      cwd: run.cwd,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: run.cwd, LANG: 'C.UTF-8', ...run.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: a timeout kills the tool and whatever it started
      ...(asRoot && { uid: BUILD_UID, gid: BUILD_UID }),
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, run.timeoutMs ?? BUILD_TIMEOUT_MS);
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, exit: `could not start ${run.command}: ${err.message}`, output: tail });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const exit = timedOut ? `timed out after ${Math.round((run.timeoutMs ?? BUILD_TIMEOUT_MS) / 1000)} s` : signal ? `signal ${signal}` : `exit ${code}`;
      resolve({ ok: code === 0 && !timedOut, exit, output: tail });
    });
  });
}

/**
 * A tool's failure as one row error: what ran, how it ended, and the lines of its output that
 * say why (npm's "npm ERR!" lines, pip's "ERROR:", the compiler's file:line: messages), or else its
 * last lines; at most ~1500 characters.
 */
export function toolFailure(what: string, result: ToolResult, telling: RegExp): string {
  const lines = result.output.split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0);
  const told = lines.filter((l) => telling.test(l));
  const chosen = (told.length > 0 ? told : lines).slice(-15).join('\n');
  const text = chosen.length > 1500 ? `…${chosen.slice(-1500)}` : chosen;
  return `${what} failed (${result.exit})${text ? `:\n${text}` : ' and printed nothing'}`;
}
