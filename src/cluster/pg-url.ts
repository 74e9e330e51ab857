// --cluster-db and its password: a postgres:// URL naming the user, host and database, and the
// password in a file (--cluster-db-password-file) or libpq's PGPASSFILE, never in the URL, since
// a process's arguments and environment show in `ps` and in logs.
import { readSecretFile } from '../secret-file.js';

/** The URL as given, once checked; an error names the rule. */
export function parsePgUrl(raw: string): { value: string } | { error: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { error: 'must be a URL such as postgres://faas@db.internal:5432/faas' };
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return { error: `must start with postgres:// (got ${url.protocol}//)` };
  if (url.password !== '') {
    return { error: 'must not hold a password (a command line and environment show in ps and logs): put it in --cluster-db-password-file or a PGPASSFILE' };
  }
  if (url.hostname === '') return { error: 'must name a host: postgres://USER@HOST:PORT/DATABASE' };
  if (url.pathname.length <= 1) return { error: 'must name a database: postgres://USER@HOST:PORT/DATABASE' };
  return { value: raw };
}

/** The password in `file`: one line, not readable by other users. */
export function readPasswordFile(file: string): { value: string } | { error: string } {
  const read = readSecretFile(file);
  if ('error' in read) return read;
  if (read.text === '' || read.text.includes('\n')) return { error: `${file} must hold the password on one line` };
  return { value: read.text };
}
