// A gateway on a host whose cgroups it cannot use (here: started as an ordinary user, so its
// cgroup is not writable; README "What the host needs", the "not root" row) says which guarantee
// is missing — start log, /readyz, /metrics — and refuses every sandboxed function with a row
// error naming the limit and the way out, unless it runs with --allow-unenforced-limits.
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startGateway, type Gateway } from './harness.js';

/** Not 65534: the harness counts that uid's processes as sandboxes. */
const USER = 4242;
let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function routeRow(g: Gateway, key: string): Promise<{ state: string; error?: string }> {
  const status = await (await fetch(`${g.admin}/routes`)).json();
  return status.routes.find((r: { key: string }) => r.key === key);
}

describe.skipIf(process.getuid?.() !== 0)('a host whose cgroups the gateway cannot use (an ordinary user)', () => {
  it('says so at start, on /readyz and in /metrics, and refuses sandboxed functions with a row error', async () => {
    gw = await startGateway([], { workers: 1, uid: USER });
    const ready = await (await fetch(`${gw.admin}/readyz`)).json();
    expect(ready.ready).toBe(true); // said, not a reason to stop serving
    expect(ready.limits.enforced).toEqual([]);
    expect(ready.warnings).toHaveLength(3);
    expect(ready.warnings[0]).toMatch(/^memory_mb \(a memory limit on the whole sandbox\) is not enforced: .*not writable by uid 4242/);
    expect(gw.logs()).toContain('is not enforced');
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/^faas_sandbox_limit_enforced\{limit="memory"\} 0$/m);
    expect(metrics).toMatch(/^faas_sandbox_limit_enforced\{limit="cpu"\} 0$/m);
    const row = await routeRow(gw, 'GET:/hello');
    expect(row.state).toBe('error');
    expect(row.error).toMatch(/^v\.memory_mb: memory_mb \(a memory limit on the whole sandbox\) cannot be enforced on this host \(.*\); start the gateway with --allow-unenforced-limits to serve it without$/);
    expect((await fetch(`${gw.http}/hello`)).status).toBe(404);
  });

  it('serves them with --allow-unenforced-limits, and still says what is missing', async () => {
    gw = await startGateway(['--allow-unenforced-limits'], { workers: 1, uid: USER });
    const g = gw;
    expect((await routeRow(g, 'GET:/hello')).state).toBe('ok');
    const res = await eventually(async () => {
      const r = await fetch(`${g.http}/hello`);
      return r.status === 200 ? r : undefined;
    });
    expect(await res.text()).toBe('hello from faas\n');
    expect(res.headers.get('server-timing')).not.toContain('cpu;dur'); // no cgroup to read
    expect((await (await fetch(`${g.admin}/readyz`)).json()).warnings).toHaveLength(3);
  });
});
