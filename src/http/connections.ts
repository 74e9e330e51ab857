// How many client connections the public port has open. uWebSockets.js tells the application
// nothing when an HTTP connection opens or closes, so the kernel is asked instead: the
// established TCP sockets whose local port is ours, in /proc/net/tcp and /proc/net/tcp6 (of
// this network namespace), read once a second. Reading is O(connections): about 1 ms per
// 1,000 open connections.
//
// The gateway refuses requests while the count is over --max-connections, with 503
// TOO_MANY_CONNECTIONS and the connection closed, as nginx's limit_conn answers requests rather
// than refusing accepts: the count comes down as refused clients go, and a connection that
// sends nothing is closed at uWS's 10 s idle timeout.
import fs from 'node:fs';

const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];
const ESTABLISHED = '01';

export class ConnectionCount {
  /** Established connections at the last refresh. */
  count = 0;
  private readonly portHex: string;

  constructor(port: number, private readonly tables: readonly string[] = TABLES) {
    this.portHex = port.toString(16).toUpperCase().padStart(4, '0');
  }

  refresh(): number {
    let n = 0;
    for (const table of this.tables) {
      let text: string;
      try {
        text = fs.readFileSync(table, 'latin1');
      } catch {
        continue; // no IPv6 on this host
      }
      n += countEstablished(text, this.portHex);
    }
    this.count = n;
    return n;
  }
}

/**
 * Lines look like `  12: 0100007F:1F90 0100007F:C2A4 01 …`: slot, local address:port,
 * remote address:port, state (hex). Exported for tests.
 */
export function countEstablished(table: string, portHex: string): number {
  let n = 0;
  let start = table.indexOf('\n') + 1; // past the header
  while (start > 0 && start < table.length) {
    let end = table.indexOf('\n', start);
    if (end < 0) end = table.length;
    const fields = table.slice(start, end).trim().split(/\s+/);
    const local = fields[1];
    if (local !== undefined && fields[3] === ESTABLISHED && local.slice(local.lastIndexOf(':') + 1) === portHex) n++;
    start = end + 1;
  }
  return n;
}
