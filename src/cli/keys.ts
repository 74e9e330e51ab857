// `faas keys create NAME | revoke NAME | list` (CONTRACT §2): API keys in the gateway's database.
// The gateway picks a change up at its next sync (5 s by default); nothing needs restarting.
// On a cluster node (--cluster-db) they go to the cluster's PostgreSQL (cli/cluster-target.ts).
import { clusterTarget } from './cluster-target.js';
import { openForWrite } from '../routes/function-store.js';
import { loadKeysConfig } from '../config.js';
import { createKey, KeyError, listKeys, revokeKey } from '../routes/api-keys.js';

export const KEYS_HELP = `Usage:
  faas keys create NAME [--db PATH]   make a key; prints it alone on stdout, once (only its SHA-256 is kept)
  faas keys revoke NAME [--db PATH]   delete it; calls with it get 401 within one sync period
  faas keys list [--db PATH] [--json] names and creation times, never keys

Examples:
  KEY=$(faas keys create ci-bot)
  curl -H "x-api-key: $KEY" localhost:8080/private
  faas keys revoke ci-bot
`;

interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Returns the exit code: 0 done, 1 refused (name taken, no such key), 2 usage. */
export async function runKeys(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  const flagAt = args.findIndex((a) => a.startsWith('--'));
  const words = flagAt < 0 ? args : args.slice(0, flagAt);
  const { db: dbPath } = loadKeysConfig(flagAt < 0 ? [] : args.slice(flagAt), env);
  const [command, name, ...extra] = words;
  const usage = (problem: string): number => {
    io.err(`faas keys: ${problem}\n\n${KEYS_HELP}`);
    return 2;
  };
  if (command === undefined) return usage('missing command');
  if (!['create', 'revoke', 'list'].includes(command)) return usage(`unknown command ${JSON.stringify(command)}`);
  if (command !== 'list' && name === undefined) return usage(`${command} needs a NAME`);
  if (extra.length > 0 || (command === 'list' && name !== undefined)) return usage(`unexpected ${JSON.stringify((command === 'list' ? [name, ...extra] : extra)[0])}`);

  // A cluster node's database is a copy: keys are made and revoked in the cluster's PostgreSQL.
  const cluster = clusterTarget(dbPath, env);
  if (cluster !== undefined && 'error' in cluster) {
    io.err(`faas keys: ${cluster.error}\n`);
    return 1;
  }
  const db = cluster === undefined ? openForWrite(dbPath) : undefined;
  const where = cluster?.url ?? dbPath;
  try {
    switch (command) {
      case 'create':
        io.out(`${db ? createKey(db, name!) : (await cluster!.store.createKey(name!)).key}\n`);
        return 0;
      case 'revoke':
        if (db ? revokeKey(db, name!) : await cluster!.store.revokeKey(name!)) return 0;
        io.err(`faas keys: no key named ${JSON.stringify(name)} in ${where}\n`);
        return 1;
      default: {
        const keys = db ? listKeys(db) : await cluster!.store.listKeys();
        if (json) io.out(`${JSON.stringify(keys.map((k) => ({ name: k.name, created: new Date(k.created).toISOString() })))}\n`);
        else if (keys.length === 0) io.out('no keys\n');
        else {
          const width = Math.max(4, ...keys.map((k) => k.name.length)) + 2;
          io.out(`${'NAME'.padEnd(width)}CREATED\n${keys.map((k) => `${k.name.padEnd(width)}${new Date(k.created).toISOString()}\n`).join('')}`);
        }
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof KeyError) {
      io.err(`faas keys: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    db?.close();
    await cluster?.store.close();
  }
}
