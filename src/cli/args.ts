// Command-line parsing for the operator commands (deploy, routes, rm, invoke, logs, top): a
// declared set of flags, every problem collected at once, nothing turned into a default.
//
// Exit codes, the same for every `faas` command: 0 done, 1 refused or failed (a value that
// breaks a rule, a call that failed, a gateway that said no), 2 usage (the command line itself
// could not be understood: an unknown flag, a missing argument or value, one too many).
import { readTokenFile } from '../admin-token.js';
import { ConfigError, loadKeysConfig } from '../config.js';
import { AdminClient } from './admin-client.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Where a command writes; `signal` is aborted on Ctrl-C (logs -f and top then stop and exit 0). */
export interface Io {
  readonly out: (chunk: string | Uint8Array) => void;
  readonly err: (text: string) => void;
  readonly signal?: AbortSignal;
}

export interface FlagSpec {
  /** '--data' */
  readonly name: string;
  /** '-d' */
  readonly alias?: string;
  /** absent: a switch; 'one': takes a value, once; 'many': takes a value, may repeat. */
  readonly value?: 'one' | 'many';
}

export interface ParsedArgs {
  readonly positionals: readonly string[];
  /** Flags that take a value, by name ('--data'); 'many' flags keep every value in order. */
  readonly values: ReadonlyMap<string, readonly string[]>;
  readonly switches: ReadonlySet<string>;
  /** Usage problems (exit 2), all of them. */
  readonly problems: readonly string[];
}

export const HELP_FLAG: FlagSpec = { name: '--help', alias: '-h' };
export const JSON_FLAG: FlagSpec = { name: '--json' };
export const DB_FLAG: FlagSpec = { name: '--db', value: 'one' };
export const ADMIN_FLAG: FlagSpec = { name: '--admin', value: 'one' };
export const ADMIN_TOKEN_FLAG: FlagSpec = { name: '--admin-token-file', value: 'one' };

/** `--flag value`, `--flag=value`, `-H value`; `--` ends the flags; a lone `-` is an argument. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.alias) byName.set(s.alias, s);
  }
  const positionals: string[] = [];
  const values = new Map<string, string[]>();
  const switches = new Set<string>();
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(flag);
    if (!spec) {
      problems.push(`unknown option ${JSON.stringify(flag)} (known: ${specs.map((s) => s.name).join(', ')})`);
      if (eq < 0 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) i++; // its value, most likely
      continue;
    }
    if (!spec.value) {
      if (eq > 0) problems.push(`${spec.name} takes no value (got ${JSON.stringify(arg)})`);
      else switches.add(spec.name);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) {
      problems.push(`${spec.name} needs a value`);
      continue;
    }
    const list = values.get(spec.name) ?? [];
    if (spec.value === 'one' && list.length > 0) problems.push(`${spec.name} is given twice (${JSON.stringify(list[0])} and ${JSON.stringify(value)}); give it once`);
    list.push(value);
    values.set(spec.name, list);
  }
  return { positionals, values, switches, problems };
}

/** The single value of a 'one' flag. */
export function valueOf(args: ParsedArgs, name: string): string | undefined {
  return args.values.get(name)?.[0];
}

/** An http(s) base URL from a flag, its environment variable, or the default; a problem names which. */
export function baseUrl(args: ParsedArgs, flag: string, envName: string, env: NodeJS.ProcessEnv, fallback: string, problems: string[]): string {
  const fromFlag = valueOf(args, flag);
  const fromEnv = env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined;
  const raw = fromFlag ?? fromEnv ?? fallback;
  const source = fromFlag !== undefined ? flag : fromEnv !== undefined ? `${envName} (from ${flag})` : flag;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
    problems.push(`${source} must be an http:// or https:// URL such as ${fallback} (got ${JSON.stringify(raw)})`);
    return fallback;
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * The admin API (--admin, FAAS_ADMIN, http://127.0.0.1:9090) and a client for it that sends the
 * gateway's bearer token when there is one: --admin-token-file, else FAAS_ADMIN_TOKEN_FILE (the
 * gateway's own setting, so a shell that starts the gateway can call it).
 */
export function adminApi(args: ParsedArgs, env: NodeJS.ProcessEnv, problems: string[]): { readonly url: string; readonly client: AdminClient } {
  const url = baseUrl(args, '--admin', 'FAAS_ADMIN', env, 'http://127.0.0.1:9090', problems);
  const fromFlag = valueOf(args, '--admin-token-file');
  const file = fromFlag ?? (env.FAAS_ADMIN_TOKEN_FILE !== '' ? env.FAAS_ADMIN_TOKEN_FILE : undefined);
  if (file === undefined) return { url, client: new AdminClient(url) };
  const read = readTokenFile(file);
  if ('error' in read) {
    problems.push(`${fromFlag !== undefined ? '--admin-token-file' : 'FAAS_ADMIN_TOKEN_FILE (from --admin-token-file)'}: ${read.error}`);
    return { url, client: new AdminClient(url) };
  }
  return { url, client: new AdminClient(url, read.token) };
}

/** The database path as the gateway finds it: --db, else FAAS_DB, else ./data/faas.db (absolute). */
export function dbPath(args: ParsedArgs, env: NodeJS.ProcessEnv, problems: string[]): string {
  const flag = valueOf(args, '--db');
  try {
    return loadKeysConfig(flag === undefined ? [] : ['--db', flag], env).db;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return '';
  }
}

/** The sync period to wait for: the gateway's own setting where this shell has it (FAAS_SYNC_MS), else its default. */
export function syncPeriodMs(env: NodeJS.ProcessEnv): number {
  const n = Number(env.FAAS_SYNC_MS);
  return Number.isSafeInteger(n) && n >= 50 ? n : 5000;
}

/** A whole number within bounds, or a problem naming the flag and the rule. */
export function intFlag(args: ParsedArgs, name: string, min: number, max: number, fallback: number, problems: string[]): number {
  const raw = valueOf(args, name);
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
  problems.push(`${name} must be an integer between ${min} and ${max} (got ${JSON.stringify(raw)})`);
  return fallback;
}

/** Prints usage problems and the command's help; returns the usage exit code. */
export function usage(io: Io, command: string, problems: readonly string[], help: string): number {
  io.err(`faas ${command}:${problems.length === 1 ? ` ${problems[0]}` : `\n  - ${problems.join('\n  - ')}`}\n\n${help}`);
  return EXIT_USAGE;
}

/** Prints refusals (every one) and returns the failure exit code. */
export function refuse(io: Io, command: string, problems: readonly string[], lead?: string): number {
  const head = lead === undefined ? '' : `${lead}:`;
  if (problems.length === 1 && lead === undefined) io.err(`faas ${command}: ${problems[0]}\n`);
  else io.err(`faas ${command}: ${head}\n  - ${problems.join('\n  - ')}\n`);
  return EXIT_FAILED;
}
