// `faas deploy`, `faas rm` and `faas keys` on a cluster node: the node's database is a read-only
// copy (schema.ts) that knows where it was copied from (cluster_source), so the commands write
// there instead, with the admin API's store (src/cluster/pg-function-store.ts). The password comes
// from FAAS_CLUSTER_DB_PASSWORD_FILE (the gateway's own variable) or libpq's PGPASSFILE.
import fs from 'node:fs';
import { PgFunctionStore } from '../cluster/pg-function-store.js';
import { readPasswordFile } from '../cluster/pg-url.js';
import { openForRead, withDatabase } from '../routes/function-store.js';

export type ClusterTarget = { readonly url: string; readonly store: PgFunctionStore } | { readonly error: string } | undefined;

/** Where writes for the database at `db` go: its cluster's PostgreSQL, or undefined when it is its own source. */
export function clusterTarget(db: string, env: NodeJS.ProcessEnv): ClusterTarget {
  if (!fs.existsSync(db)) return undefined;
  const url = withDatabase(() => openForRead(db), (conn) => {
    const exists = conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cluster_source'").get() !== undefined;
    return exists ? conn.prepare('SELECT url FROM cluster_source WHERE id = 1').pluck().get() as string | undefined : undefined;
  });
  if (url === undefined) return undefined;
  let password: string | undefined;
  const file = env.FAAS_CLUSTER_DB_PASSWORD_FILE;
  if (file !== undefined && file !== '') {
    const read = readPasswordFile(file);
    if ('error' in read) return { error: `FAAS_CLUSTER_DB_PASSWORD_FILE: ${read.error}` };
    password = read.value;
  }
  return { url, store: new PgFunctionStore(url, password) };
}
