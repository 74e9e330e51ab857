// What runs on the hosts of scripts/lib/cluster-hosts.mjs: PostgreSQL (the config source), Redis
// (cluster rate limits), HAProxy (examples/haproxy.cfg with this run's addresses) and gateways
// (dist/src/cli/main.js). Each start waits until its service answers and throws with the log's tail
// when it does not.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const EXAMPLE_HAPROXY = path.join(ROOT, 'examples/haproxy.cfg');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Programs the hosts need beyond ip, nsenter and setpriv. */
export const SERVICE_PROGRAMS = [`${PG_BIN}/initdb`, `${PG_BIN}/postgres`, `${PG_BIN}/psql`, `${PG_BIN}/pg_isready`, 'redis-server', 'haproxy', 'curl'];

/**
 * Which of the cluster flags the built gateway knows (dist/src/config.js). A flag the build lacks
 * is a check to skip, with this reason.
 */
export function clusterFeatures() {
  let text = '';
  try { text = fs.readFileSync(path.join(ROOT, 'dist/src/config.js'), 'utf8'); } catch { /* not built */ }
  const has = (flag) => text.includes(`'${flag}'`);
  const why = (flag) => `the built gateway (dist/src/config.js) has no ${flag} yet`;
  return {
    clusterDb: has('--cluster-db'),
    agentPort: has('--agent-port'),
    clusterRedis: has('--cluster-redis'),
    reason: { clusterDb: why('--cluster-db'), agentPort: why('--agent-port'), clusterRedis: why('--cluster-redis') },
  };
}

export function tail(file, lines = 40) {
  try { return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

/** Polls `ready` until it is truthy; throws with the process's log tail when it exits or time runs out. */
async function waitFor(what, proc, ready, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${what} exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready:\n${tail(proc.log)}`);
    }
    try {
      const v = await ready();
      if (v) return v;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs} ms:\n${tail(proc.log)}`);
    await sleep(100);
  }
}

/** Sends `line` over TCP and resolves with everything read until `done(text)` or the peer closes. */
export function tcpAsk(host, port, line, { timeoutMs = 2000, done = () => false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let text = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`${host}:${port}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
    sock.on('connect', () => { if (line) sock.write(line); });
    sock.on('data', (c) => { text += c; if (done(text)) sock.end(); });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.on('close', () => { clearTimeout(timer); resolve(text); });
  });
}

/**
 * PostgreSQL on `host`: a cluster initialised by the `postgres` OS user in the run's dir, listening
 * on the host's address, with a role and database `faas` (password login, scram-sha-256, from the
 * bridge's subnet) and a PGPASSFILE (mode 600) for the gateways. stop() and start() stop it (fast
 * shutdown) and start it again on the same data.
 */
export async function startPostgres(hosts, host, { port = 5432 } = {}) {
  const dir = path.join(hosts.dir, 'pg');
  fs.mkdirSync(dir, { mode: 0o700 });
  const pgUid = Number(hosts.exec(host, 'id', ['-u', 'postgres']).stdout.trim());
  const pgGid = Number(hosts.exec(host, 'id', ['-g', 'postgres']).stdout.trim());
  fs.chownSync(dir, pgUid, pgGid);
  const data = path.join(dir, 'data');
  hosts.exec(host, `${PG_BIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'], { user: 'postgres' });
  fs.appendFileSync(path.join(data, 'pg_hba.conf'), `host all all ${hosts.subnet}.0/24 scram-sha-256\n`);
  const addr = hosts.addr(host);
  const args = ['-D', data, '-c', `listen_addresses=${addr}`, '-c', `port=${port}`, '-c', `unix_socket_directories=${dir}`,
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'shared_buffers=32MB', '-c', 'max_connections=40'];
  const log = path.join(hosts.dir, 'postgres.log');
  const pg = { addr, port, database: 'faas', user: 'faas', password: crypto.randomBytes(12).toString('hex'), log, proc: undefined };
  const ready = () => hosts.exec(host, `${PG_BIN}/pg_isready`, ['-h', dir, '-p', String(port)], { allowFail: true }).code === 0;
  pg.start = async () => {
    pg.proc = hosts.spawn(host, `${PG_BIN}/postgres`, args, { user: 'postgres', log, label: 'postgres' });
    await waitFor('postgres', pg.proc, ready);
  };
  /** Fast shutdown (SIGINT): clients are disconnected, the port is closed. */
  pg.stop = () => hosts.stop(pg.proc, { signal: 'SIGINT', graceMs: 10_000 });
  await pg.start();
  const psql = (sql) => hosts.exec(host, `${PG_BIN}/psql`, ['-X', '-h', dir, '-p', String(port), '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { user: 'postgres' });
  psql(`CREATE ROLE faas LOGIN PASSWORD '${pg.password}'`);
  psql('CREATE DATABASE faas OWNER faas');
  pg.passfile = path.join(hosts.dir, 'pgpass');
  fs.writeFileSync(pg.passfile, `${addr}:${port}:faas:faas:${pg.password}\n`, { mode: 0o600 });
  pg.url = `postgres://faas@${addr}:${port}/faas`;
  /** Settings for a `pg` Client from the root side (an operator). */
  pg.client = { host: addr, port, database: 'faas', user: 'faas', password: pg.password, connectionTimeoutMillis: 3000 };
  return pg;
}

/** redis-server on `host`, bound to its address, nothing persisted. */
export async function startRedis(hosts, host, { port = 6379 } = {}) {
  const addr = hosts.addr(host);
  const proc = hosts.spawn(host, 'redis-server', ['--bind', addr, '--port', String(port), '--save', '', '--appendonly', 'no',
    '--protected-mode', 'no', '--daemonize', 'no', '--dir', hosts.dir], { label: 'redis' });
  await waitFor('redis-server', proc, async () => (await tcpAsk(addr, port, 'PING\r\n', { done: (t) => t.includes('\n') })).startsWith('+PONG'));
  return { addr, port, url: `redis://${addr}:${port}`, proc };
}

/**
 * HAProxy's config for this run from examples/haproxy.cfg: the global
 * section loses what a foreground process in a temp dir cannot have (daemon, chroot, user, group,
 * pidfile, its own stats socket) and gets a stats socket in the run's dir; every `bind` listens
 * on the load balancer's address (ports kept); the server lines of each backend are replaced by one
 * per gateway, each with the options of the example's first server line, its address, port and
 * agent port substituted, in server and default-server lines (agent options dropped when the
 * gateways have no agent).
 */
export function haproxyConfig(template, { lbAddr, gateways, agentPort, statsSocket }) {
  const out = [];
  let section = '';
  let serversDone = false;
  for (const raw of template.split('\n')) {
    const line = raw.trim();
    const word = line.split(/\s+/)[0];
    if (/^(global|defaults|frontend|backend|listen|resolvers|peers|userlist|program|http-errors|ring|cache)$/.test(word) && !raw.startsWith(' ') && !raw.startsWith('\t')) {
      section = word;
      serversDone = false;
      out.push(raw);
      if (section === 'global') out.push(`  stats socket ${statsSocket} mode 600 level admin`, '  stats timeout 30s');
      continue;
    }
    if (section === 'global' && /^(daemon|chroot|user|group|uid|gid|pidfile|stats\s+socket|master-worker|nbthread)\b/.test(line)) continue;
    if (word === 'bind') {
      out.push(raw.replace(/(bind\s+)(\S*?):(\d+)/, `$1${lbAddr}:$3`));
      continue;
    }
    if (word === 'default-server') {
      out.push(`    default-server ${agentOptions(line.slice(word.length), agentPort)}`);
      continue;
    }
    if (word === 'server' || word === 'server-template') {
      if (serversDone) continue;
      serversDone = true;
      const m = /^\s*server\s+\S+\s+\S+\s*(.*)$/.exec(raw);
      const opts = agentOptions(m ? m[1] : '', agentPort);
      for (const g of gateways) out.push(`    server ${g.name} ${g.addr}:${g.port} ${opts}`.trimEnd());
      continue;
    }
    out.push(raw);
  }
  return out.join('\n');
}

/** Server options with this run's agent port, or without agent options when the gateways have no agent. */
function agentOptions(opts, agentPort) {
  const out = agentPort === undefined
    ? opts.replace(/\bagent-check\b/g, '').replace(/\bagent-(inter|port|addr|send)\s+("[^"]*"|\S+)/g, '')
    : opts.replace(/agent-port\s+\d+/, `agent-port ${agentPort}`).replace(/agent-addr\s+\S+/, '');
  return out.replace(/\s+/g, ' ').trim();
}

/** The check timing of a config's servers: inter (ms) and fall, HAProxy's defaults 2000 and 3. */
export function checkTiming(config) {
  const ms = (v, unit) => Number(v) * ({ ms: 1, s: 1000, m: 60_000 }[unit || 'ms']);
  const inter = /(?<![\w-])inter\s+(\d+)(ms|s|m)?\b/.exec(config);
  const fall = /(?<![\w-])fall\s+(\d+)\b/.exec(config);
  return { interMs: inter ? ms(inter[1], inter[2]) : 2000, fall: fall ? Number(fall[1]) : 3 };
}

/** HAProxy on `host` in the foreground (-db), the config made from examples/haproxy.cfg. */
export async function startHaproxy(hosts, host, { gateways, agentPort }) {
  const template = fs.readFileSync(EXAMPLE_HAPROXY, 'utf8');
  const statsSocket = path.join(hosts.dir, 'haproxy.sock');
  const lbAddr = hosts.addr(host);
  const config = haproxyConfig(template, { lbAddr, gateways, agentPort, statsSocket });
  const cfgPath = path.join(hosts.dir, 'haproxy.cfg');
  fs.writeFileSync(cfgPath, config);
  const check = hosts.exec(host, 'haproxy', ['-c', '-f', cfgPath], { allowFail: true });
  if (check.code !== 0) throw new Error(`haproxy refuses ${cfgPath} (made from examples/haproxy.cfg):\n${check.stdout}${check.stderr}\n${config}`);
  const port = Number(/^\s*bind\s+\S*:(\d+)/m.exec(config)?.[1] ?? 8080);
  const proc = hosts.spawn(host, 'haproxy', ['-db', '-f', cfgPath], { label: 'haproxy' });
  const lb = {
    addr: lbAddr, port, url: `http://${lbAddr}:${port}`, proc, config, statsSocket,
    ...checkTiming(config),
    /** `show stat` as objects (pxname, svname, status, weight, …). */
    stat: async () => {
      const text = await askSocket(statsSocket, 'show stat\n');
      const [head, ...rows] = text.trim().split('\n');
      const cols = head.replace(/^# /, '').split(',');
      return rows.filter(Boolean).map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i], v])));
    },
    /** Each gateway's row: { status, weight, … } by server name. */
    servers: async () => Object.fromEntries((await lb.stat()).filter((r) => gateways.some((g) => g.name === r.svname)).map((r) => [r.svname, r])),
  };
  await waitFor('haproxy', proc, async () => fs.existsSync(statsSocket) && (await lb.stat()).length > 0);
  return lb;
}

function askSocket(file, line) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    let text = '';
    sock.on('connect', () => sock.write(line));
    sock.on('data', (c) => { text += c; });
    sock.on('error', reject);
    sock.on('close', () => resolve(text));
  });
}

/**
 * A gateway on `host` (1 worker, public port 8080 and admin port 9090 on the host's address, an
 * admin token file), stdout and stderr to a file. `cluster` adds the cluster flags the build
 * knows: { db: pg, redis, agentPort, trustedProxies }.
 */
export async function startGateway(hosts, host, { syncMs = 5000, cluster = {}, env = {}, port = 8080, adminPort = 9090 } = {}) {
  const dir = path.join(hosts.dir, host);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const token = crypto.randomBytes(24).toString('hex');
  const tokenFile = path.join(dir, 'admin-token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const addr = hosts.addr(host);
  const args = [CLI, 'gateway', '--host', addr, '--port', String(port), '--admin-host', addr, '--admin-port', String(adminPort),
    '--admin-token-file', tokenFile, '--db', path.join(dir, 'faas.db'), '--run-dir', path.join(dir, 'run'), '--workers', '1',
    '--sync-ms', String(syncMs)];
  if (cluster.trustedProxies) args.push('--trusted-proxies', cluster.trustedProxies);
  if (cluster.db) args.push('--cluster-db', cluster.db.url);
  if (cluster.redis) args.push('--cluster-redis', cluster.redis.url);
  if (cluster.agentPort !== undefined) args.push('--agent-port', String(cluster.agentPort));
  const gw = {
    name: host, addr, port, adminPort, agentPort: cluster.agentPort, dir, args,
    url: `http://${addr}:${port}`,
    admin: `http://${addr}:${adminPort}`,
    log: path.join(hosts.dir, `${host}.log`),
    /** GET on the admin port with the token. */
    adminGet: (p) => fetch(`http://${addr}:${adminPort}${p}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) }),
    /** The agent-check line, as HAProxy reads it. */
    agent: async () => (await tcpAsk(addr, cluster.agentPort, '', { done: (t) => t.includes('\n') })).trim(),
  };
  gw.start = async () => {
    const from = fs.existsSync(gw.log) ? fs.statSync(gw.log).size : 0;
    gw.proc = hosts.spawn(host, process.execPath, args, { log: gw.log, label: host, env: { ...(cluster.db && { PGPASSFILE: cluster.db.passfile }), ...env } });
    await waitFor(`gateway ${host}`, gw.proc, () => readFrom(gw.log, from).includes('listening http='), 40_000);
    hosts.snapshotTrees();
  };
  await gw.start();
  return gw;
}

export function readFrom(file, offset) {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
