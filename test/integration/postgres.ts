// A throwaway PostgreSQL for tests: initdb into a temporary folder, listening on a Unix socket
// in it and on a loopback TCP port, password authentication for TCP (so --cluster-db's password
// file is exercised), stopped and removed by stop(). PostgreSQL refuses to run as root, so as
// root it runs as the `postgres` user that Debian's package creates.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const BIN = ['15', '16', '17'].map((v) => `/usr/lib/postgresql/${v}/bin`).find((dir) => fs.existsSync(path.join(dir, 'initdb')));

export const PASSWORD = 'faas-test-password';
export const USER = 'faas';
export const DATABASE = 'faas';

/** Why PostgreSQL cannot run here, or undefined. */
export function postgresMissing(): string | undefined {
  if (BIN === undefined) return 'PostgreSQL is not installed (apt-get install postgresql; npm test installs it as root)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) return 'running as root and there is no postgres user to run PostgreSQL as';
  return undefined;
}

/** The URL with the test password in it, for the tests' own clients (the gateway reads a file). */
export function withPassword(url: string): string {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.toString();
}

export interface Postgres {
  readonly dir: string;
  readonly port: number;
  /** postgres://faas@127.0.0.1:PORT/faas, without the password. */
  readonly url: string;
  /** A file holding the password (mode 0600), for --cluster-db-password-file. */
  readonly passwordFile: string;
  /** Runs SQL as the superuser over the Unix socket; returns psql's output (tuples only, unaligned). */
  psql(sql: string): string;
  stop(): void;
  start(): void;
  /** Stops and deletes everything. */
  destroy(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export async function startPostgres(): Promise<Postgres> {
  const missing = postgresMissing();
  if (missing) throw new Error(missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const root = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]): string[] => (root ? ['runuser', '-u', 'postgres', '--', cmd, ...args] : [cmd, ...args]);
  const run = (cmd: string, args: string[], input?: string): string => {
    const [file, ...rest] = as(cmd, args);
    return execFileSync(file!, rest, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined && { input }) });
  };
  if (root) execFileSync('chown', ['postgres:postgres', dir]);
  run(path.join(BIN!, 'initdb'), ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  fs.appendFileSync(path.join(data, 'postgresql.conf'),
    `\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\nfsync = off\nmax_connections = 50\n`);
  const start = (): void => {
    run(path.join(BIN!, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '30', 'start']);
  };
  const stop = (): void => {
    const [file, ...rest] = as(path.join(BIN!, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
    spawnSync(file!, rest, { stdio: 'ignore' }); // already stopped is fine
  };
  start();
  const psql = (sql: string, db = DATABASE): string => run('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-f', '-'], sql);
  psql(`CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD}'; CREATE DATABASE ${DATABASE} OWNER ${USER};`, 'postgres');
  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  return {
    dir, port, url: `postgres://${USER}@127.0.0.1:${port}/${DATABASE}`, passwordFile,
    psql: (sql) => psql(sql),
    stop, start,
    destroy: () => {
      stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
