// The sandbox a function runs in, in each mode and however it was started — a pre-started
// sandbox adopting inline code, bwrap or the python zygote for code deployed by path, runc in
// container mode: unprivileged (uid 65534, no capabilities, no-new-privileges), no network (no
// namespace to reach one, and no socket but AF_UNIX under seccomp), none of the host's
// environment, a read-only system, a private writable /tmp, no new namespaces (probes.ts).
// Nothing is left on the host afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, expectNoResidue, fn, hostResidue, MODES, startGateway, type Gateway } from './harness.js';
import { expectNodeIsolated, expectPythonIsolated, nodeProbe, PROBE_ENV, pythonProbe } from './probes.js';

let gw: Gateway;
let port: string;
let residueBefore: ReturnType<typeof hostResidue>;

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
  port = new URL(gw.http).port;
  // Code deployed by path is mounted where it is: the checkout may not be readable by uid
  // 65534, the gateway's temp dir is.
  const probes = path.join(gw.dir, 'probes');
  fs.mkdirSync(path.join(probes, 'node'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(probes, 'node', 'index.mjs'), nodeProbe, { mode: 0o644 });
  fs.writeFileSync(path.join(probes, 'probe.py'), pythonProbe, { mode: 0o644 });
  fs.chmodSync(probes, 0o755);
  const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  for (const mode of MODES) {
    insert.run(`GET:/${mode}/inline/node`, fn({ runtime: 'node', mode, env: PROBE_ENV, code: nodeProbe }));
    insert.run(`GET:/${mode}/inline/python`, fn({ runtime: 'python', mode, env: PROBE_ENV, code: pythonProbe }));
    insert.run(`GET:/${mode}/path/node`, fn({ runtime: 'node', mode, env: PROBE_ENV, path: path.join(probes, 'node') }));
    insert.run(`GET:/${mode}/path/python`, fn({ runtime: 'python', mode, env: PROBE_ENV, path: path.join(probes, 'probe.py') }));
  }
  await eventually(async () => (await fetch(`${gw.http}/container/path/python`)).status !== 404);
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore); // no process, cgroup or container left behind
});

/** What started the route's first instance, from the worker's log. */
function startedVia(key: string): string {
  return gw.instanceLog(key).find((l) => l.msg === 'instance started')?.via ?? 'not started';
}

describe.each(MODES)('%s sandbox', (mode) => {
  it.each(['inline', 'path'] as const)('node (%s): unprivileged, isolated, read-only system, private /tmp, no network', async (how) => {
    const res = await fetch(`${gw.http}/${mode}/${how}/node?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    expectNodeIsolated(await res.json());
  });

  it.each(['inline', 'path'] as const)('python (%s): the same', async (how) => {
    const res = await fetch(`${gw.http}/${mode}/${how}/python?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    expectPythonIsolated(await res.json(), how);
  });

  it('python by path started where it should: the zygote in process mode (as root), runc in container mode', () => {
    const expected = mode === 'container' ? 'runc' : process.getuid?.() === 0 ? 'python zygote' : 'bwrap';
    expect(startedVia(`GET:/${mode}/path/python`)).toBe(expected);
  });

  it('the host environment never reaches a function', async () => {
    const p = await (await fetch(`${gw.http}/${mode}/inline/node?port=${port}`)).json();
    expect(JSON.stringify(p.env)).not.toContain('must-not-leak');
  });
});
