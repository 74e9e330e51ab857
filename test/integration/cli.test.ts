// The operators' commands (faas deploy, routes, rm, invoke, logs, top) run as a user runs them:
// the built CLI in a child process, against one real gateway with real workers, on the
// gateway's own database. Every function in examples/ is deployed and called.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startGateway, type Gateway } from './harness.js';

const CLI = path.resolve('dist/src/cli/main.js');
let gw: Gateway;
let env: NodeJS.ProcessEnv;
let operator: ReturnType<Gateway['sql']>;

interface Run { code: number; out: string; err: string }

/** Runs `faas ARGS…` with the gateway's database, admin API and HTTP port in its environment. */
function faas(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 20_000 }, (err, out, errText) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out, err: errText });
    });
  });
}

function rows(): Array<{ k: string; v: string }> {
  return operator.prepare('SELECT k, v FROM functions ORDER BY k').all() as Array<{ k: string; v: string }>;
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

beforeAll(async () => {
  gw = await startGateway([], { workers: 1, syncMs: 200 });
  operator = gw.sql();
  env = { ...process.env, FAAS_DB: gw.dbPath, FAAS_ADMIN: gw.admin, FAAS_URL: gw.http, FAAS_SYNC_MS: '200' };
});
afterAll(async () => {
  await gw?.stop();
});

describe('faas deploy: every example, then a call to it', () => {
  const cases = [
    { key: 'GET:/ex/fetch', args: ['examples/fetch.mjs', '--runtime', 'node', '--env', 'GREETING=howdy'],
      call: ['GET:/ex/fetch?name=ops'], body: /^\{"greeting":"howdy, ops","requestId":"[^"]+"\}$/ },
    { key: 'POST:/ex/lambda', args: ['examples/lambda.cjs', '--runtime', 'node'],
      call: ['POST:/ex/lambda', '--data', 'hi there', '-H', 'content-type: text/plain'], body: /^POST \/ex\/lambda got "hi there" \(request [\w-]+\)\n$/ },
    { key: 'POST:/ex/python', args: ['examples/handle.py', '--runtime', 'python'],
      call: ['POST:/ex/python?x=1', '--data', 'the quick brown fox'], body: /^\{"words": 4, "longest": "quick", "query": \{"x": "1"\}\}$/ },
    { key: 'POST:/ex/wasm', args: ['examples/wasm/hello.wasm', '--runtime', 'wasm'],
      call: ['POST:/ex/wasm', '--data', 'hello wasm'], body: /^HELLO WASM$/ },
    { key: 'GET:/ex/lambda-stream', args: ['examples/lambda-stream.mjs', '--runtime', 'node'],
      call: ['GET:/ex/lambda-stream?from=2'], body: /^2…\n1…\nlift-off\n$/ },
    { key: 'GET:/ex/stream-py', args: ['examples/stream.py', '--runtime', 'python'],
      call: ['GET:/ex/stream-py?count=2'], body: /^data: \{"n": 0\}\n\ndata: \{"n": 1\}\n\n$/ },
    { key: 'GET:/ex/lambda-esm', args: ['examples/lambda-esm.mjs', '--runtime', 'node'],
      call: ['GET:/ex/lambda-esm'], body: /^"Hello from Lambda!"$/ },
    { key: 'GET:/ex/lambda-py', args: ['examples/lambda_function.py', '--runtime', 'python'],
      call: ['GET:/ex/lambda-py'], body: /^"Hello from Lambda!"$/ },
    { key: 'GET:/ex/container', args: ['examples/container', '--runtime', 'node', '--mode', 'container'],
      call: ['GET:/ex/container'], body: /^\{"uid":65534,"rootWritable":false,"tmpWritable":true,"network":"blocked: [A-Z]+"\}$/ },
  ];
  for (const c of cases) {
    it(`${c.key} from ${c.args[0]}`, async () => {
      const deployed = await faas('deploy', c.key, ...c.args);
      expect(deployed.err).toBe('');
      expect(deployed.code).toBe(0);
      expect(deployed.out).toContain(`${c.key}: created in ${gw.dbPath}`);
      expect(deployed.out).toMatch(new RegExp(`live now: the gateway at ${gw.admin} serves ${c.key} \\(version \\d+\\)`));
      const v = JSON.parse(rows().find((r) => r.k === c.key)!.v);
      expect(v.path).toBe(fs.realpathSync(c.args[0]!.endsWith('container') ? 'examples/container' : c.args[0]!));
      const called = await faas('invoke', ...c.call);
      expect(called.err).toBe('');
      expect(called.code).toBe(0);
      expect(called.out).toMatch(c.body);
    });
  }
});

describe('faas deploy', () => {
  it('refuses bad input with every problem at once, naming each input and rule, and writes nothing', async () => {
    const before = rows();
    const r = await faas('deploy', 'get:/bad', 'examples/nope.mjs', '--runtime', 'ruby', '--timeout-ms', '5s', '--env', 'NOEQUALS');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`refused get:/bad, nothing written to ${gw.dbPath}`);
    expect(r.err).toContain('METHOD:/path: functions.k must be \'METHOD:/path\' with METHOD in upper case');
    expect(r.err).toContain('FILE "examples/nope.mjs" does not exist');
    expect(r.err).toContain('--runtime: v.runtime must be one of "node", "python", "wasm", "go" (got "ruby")');
    expect(r.err).toContain('--timeout-ms: v.timeout_ms must be an integer between 1 and 900000 (got "5s")');
    expect(r.err).toContain('--env must be NAME=VALUE (got "NOEQUALS")');
    expect(rows()).toEqual(before);
  });

  it('refuses a folder without an entry file, and a .wat given as a module', async () => {
    const noEntry = await faas('deploy', 'GET:/bad', 'examples', '--runtime', 'python');
    expect(noEntry.code).toBe(1);
    expect(noEntry.err).toContain('DIR "examples" has no entry file: a python function\'s folder needs one of main.py, handler.py');
    const wat = await faas('deploy', 'GET:/bad', 'examples/wasm/hello.wat', '--runtime', 'wasm');
    expect(wat.code).toBe(1);
    expect(wat.err).toContain('is not a WebAssembly module');
    expect(rows().some((r) => r.k === 'GET:/bad')).toBe(false);
  });

  it('is a usage error (2) without its arguments or with an unknown flag', async () => {
    const r = await faas('deploy', 'GET:/x', '--bogus', 'examples/fetch.mjs');
    expect(r.code).toBe(2);
    expect(r.err).toContain('missing --runtime node|python|wasm');
    expect(r.err).toContain('unknown option "--bogus"');
    expect(r.err).toContain('Usage:\n  faas deploy');
  });

  it('a second deploy of the same file is a new version, so an edited file is reread', async () => {
    const file = path.join(gw.dir, 'edited.mjs');
    fs.writeFileSync(file, "export default { fetch: () => new Response('one') }");
    expect((await faas('deploy', 'GET:/edited', file, '--runtime', 'node')).code).toBe(0);
    expect((await faas('invoke', 'GET:/edited')).out).toBe('one');
    fs.writeFileSync(file, "export default { fetch: () => new Response('two') }");
    const again = await faas('deploy', 'GET:/edited', file, '--runtime', 'node', '--json');
    expect(again.code).toBe(0);
    const result = JSON.parse(again.out);
    expect(result).toMatchObject({ key: 'GET:/edited', change: 'redeployed', live: { state: 'live' }, v: { runtime: 'node', path: file } });
    expect((await faas('invoke', 'GET:/edited')).out).toBe('two');
  });

  it('prints the gateway\'s error, and exits 1, when the gateway cannot use the row it wrote', async () => {
    // The file goes away between deploy's checks and the gateway's sync (200 ms): the gateway
    // checks again, refuses the row, and deploy reports that. Should a sync fall in the few ms
    // between the commit and the unlink, the deploy is live instead; another key tries again.
    for (let attempt = 1; ; attempt++) {
      const key = `GET:/vanishing${attempt}`;
      const file = path.join(gw.dir, `vanishing${attempt}.mjs`);
      fs.writeFileSync(file, "export default { fetch: () => new Response('here') }");
      const run = faas('deploy', key, file, '--runtime', 'node');
      const find = operator.prepare('SELECT 1 FROM functions WHERE k = ?');
      await eventually(async () => find.get(key) !== undefined, 10_000, 1);
      fs.rmSync(file);
      const r = await run;
      if (r.code === 0 && attempt < 3) continue;
      expect(r.code).toBe(1);
      expect(r.out).toContain(`${key}: created in`);
      expect(r.err).toContain(`faas deploy: the gateway at ${gw.admin} cannot serve the row written: v.path "${file}" does not exist on this host; it serves nothing at ${key}`);
      return;
    }
  });

  it('--inline stores the code in the row', async () => {
    const r = await faas('deploy', 'GET:/inline', 'examples/handle.py', '--runtime', 'python', '--inline', '--rate-limit', '50/100');
    expect(r.code).toBe(0);
    const v = JSON.parse(rows().find((row) => row.k === 'GET:/inline')!.v);
    expect(v).toEqual({ runtime: 'python', code: fs.readFileSync('examples/handle.py', 'utf8'), rate_limit: { rps: 50, burst: 100 } });
    const called = await faas('invoke', 'GET:/inline');
    expect(called.code).toBe(1); // the example answers 400 to an empty body
    expect(called.err).toContain('GET:/inline answered 400');
  });

  it('with no gateway answering, writes the row and says when it will be live', async () => {
    const r = await faas('deploy', 'GET:/later', 'examples/fetch.mjs', '--runtime', 'node', '--admin', `http://127.0.0.1:${await closedPort()}`);
    expect(r.code).toBe(0);
    expect(r.out).toContain('not live yet: no gateway answers at');
    expect(r.out).toContain('within one sync period');
    expect(rows().some((row) => row.k === 'GET:/later')).toBe(true);
  });
});

describe('faas routes', () => {
  it('prints what the gateway serves, as a table and as JSON', async () => {
    const table = await faas('routes');
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^KEY +STATE +RUNTIME +VERSION +UPDATED +ERROR\n/);
    expect(table.out).toMatch(/\nGET:\/ex\/fetch +ok +node +\d+ +\d{4}-\d\d-\d\dT/);
    expect(table.out).toMatch(/\nsync: ok, last [\d.]+ s ago; \d+ routes(, 1 with errors)?\n$/); // the vanishing row
    const json = await faas('routes', '--json');
    const view = JSON.parse(json.out);
    expect(view.source).toBe('gateway');
    expect(view.routes).toContainEqual(expect.objectContaining({ key: 'POST:/ex/wasm', state: 'ok', runtime: 'wasm' }));
    expect(typeof view.lastSuccessAt).toBe('number');
  });

  it('lists the database, marked not synced, and exits 1 when no gateway answers', async () => {
    const r = await faas('routes', '--admin', `http://127.0.0.1:${await closedPort()}`);
    expect(r.code).toBe(1);
    expect(r.err).toContain('no gateway answers at');
    expect(r.err).toContain('not synced: gateway unreachable');
    expect(r.out).toMatch(/\nGET:\/ex\/fetch +not synced +node +\d{4}-/);
  });
});

describe('faas invoke', () => {
  it('sends --data and headers, and gives status, headers and timing with --json', async () => {
    const r = await faas('invoke', 'POST:/ex/lambda', '-d', 'payload', '-H', 'x-request-id: cli-test-1', '--json');
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.out);
    expect(answer).toMatchObject({ status: 200, requestId: 'cli-test-1', worker: 'w1' });
    expect(answer.body).toContain('got "payload"');
    expect(answer.serverTiming).toMatchObject({ gateway: expect.any(Number), function: expect.any(Number), start: expect.stringMatching(/^(cold|warm)$/) });
  });

  it('exits 1 with the status and the error JSON on stderr when the answer is not 2xx', async () => {
    const r = await faas('invoke', 'GET:/nope');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('GET:/nope answered 404');
    expect(r.err).toContain('"code":"ROUTE_NOT_FOUND"');
  });
});

describe('faas rm', () => {
  it('deletes the row, waits until it is gone, and refuses a key it does not have', async () => {
    expect((await faas('deploy', 'GET:/doomed', 'examples/fetch.mjs', '--runtime', 'node')).code).toBe(0);
    const r = await faas('rm', 'GET:/doomed');
    expect(r.code).toBe(0);
    expect(r.out).toContain('gone now');
    expect((await fetch(`${gw.http}/doomed`)).status).toBe(404);
    const again = await faas('rm', 'GET:/doomed');
    expect(again.code).toBe(1);
    expect(again.err).toContain('no route GET:/doomed in');
  });
});

describe('faas logs and top', () => {
  it('logs shows what a function printed, under its request id', async () => {
    expect((await faas('invoke', 'GET:/ex/fetch?name=logged', '-H', 'x-request-id: cli-log-1')).code).toBe(0);
    const r = await eventually(async () => {
      const run = await faas('logs', 'GET:/ex/fetch');
      return run.out.includes('cli-log-1') && run;
    });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\S+Z {2}cli-log-1 {2}GET:\/ex\/fetch {2}\[stdout\] {2}greeting logged$/m);
    const json = (await faas('logs', 'GET:/ex/fetch', '--json', '--limit', '2')).out.trim().split('\n').map((l) => JSON.parse(l));
    expect(json.length).toBeLessThanOrEqual(2);
    expect(json.every((e) => e.route === 'GET:/ex/fetch')).toBe(true);
  });

  it('logs -f prints new entries as they come, and ends cleanly on Ctrl-C', async () => {
    const child = spawn(process.execPath, [CLI, 'logs', '-f', 'GET:/ex/fetch', '--limit', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await eventually(async () => out.length > 0, 5000); // the last entry, then it follows
      await faas('invoke', 'GET:/ex/fetch?name=followed', '-H', 'x-request-id: cli-follow-1');
      await eventually(async () => out.includes('cli-follow-1  GET:/ex/fetch  [stdout]  greeting followed'), 5000);
      // Following also shows each call's access entry (not kept for a plain `faas logs`).
      await eventually(async () => /cli-follow-1 {2}GET:\/ex\/fetch {2}\[access\] {2}200 /.test(out), 5000);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('top --once prints the workers, the routes and the sync line', async () => {
    const r = await faas('top', '--once');
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('\x1b[');
    expect(r.out).toMatch(/^WORKER +PID +STATE +SCORE +CPU +MEM +IO +IN-FLIGHT +RPS +P50ms +P99ms +ERR +RESTARTS$/m);
    expect(r.out).toMatch(/^w1 +\d+ +up /m);
    expect(r.out).toMatch(/^ROUTE +STATE +RUNTIME +RPS +P50ms +P99ms +CPUms +MEM-MiB +ERR$/m);
    expect(r.out).toMatch(/^GET:\/ex\/fetch +ok +node /m);
    expect(r.out).toMatch(/^sync: ok, /m);
    const json = JSON.parse((await faas('top', '--once', '--json')).out);
    expect(json.workers[0]).toMatchObject({ id: 'w1', available: true });
  });
});

describe('faas help', () => {
  it('lists every command, and each command has its own help with examples', async () => {
    const all = await faas('help');
    for (const command of ['gateway', 'worker', 'deploy', 'routes', 'rm', 'invoke', 'logs', 'top', 'keys']) expect(all.out).toContain(`faas ${command}`);
    for (const command of ['deploy', 'routes', 'rm', 'invoke', 'logs', 'top']) {
      const help = await faas(command, '--help');
      expect(help.code).toBe(0);
      expect(help.out).toContain(`Usage:\n  faas ${command}`);
      expect(help.out).toContain('Examples:');
    }
  });
});
