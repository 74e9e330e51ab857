// What each kind of host lets workers enforce, from captured /proc and cgroup files: our hybrid
// machines, a pure cgroup v2 host under systemd with and without delegation, a gateway already in
// its supervisor leaf, a non-root user, and no cgroups at all; and which rows are refused.
import { describe, expect, it } from 'vitest';
import { delegatedBase, detectHostLimits, limitWarnings, unenforcedLimit, type HostFiles } from '../../src/host/host-limits.js';

function host(files: Record<string, string>, writable: (file: string) => boolean = () => true): HostFiles {
  return { read: (file) => files[file], writable };
}

const HYBRID = {
  '/proc/mounts': [
    'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
    'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
    'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
    'cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0',
    'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
  ].join('\n'),
  '/proc/self/cgroup': '8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n',
};

const V2_SERVICE = '/sys/fs/cgroup/system.slice/faas-gateway.service';
const V2 = (controllers: string, own = '/system.slice/faas-gateway.service') => ({
  '/proc/mounts': 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n',
  '/proc/self/cgroup': `0::${own}\n`,
  [`${V2_SERVICE}/cgroup.controllers`]: controllers,
  [`${V2_SERVICE}/cgroup.subtree_control`]: '',
});

describe('detectHostLimits', () => {
  it('hybrid: memory, pids and cpu on their v1 hierarchies', () => {
    const h = detectHostLimits(host(HYBRID));
    expect(h.kind).toBe('hybrid');
    expect(h.base).toBe('/sys/fs/cgroup/memory/process_api/abc');
    expect(h.missing).toEqual({ memory: undefined, pids: undefined, cpu: undefined });
    expect(limitWarnings(h)).toEqual([]);
  });

  it('v1 without a cpu hierarchy: the cpu quota is missing, and says so', () => {
    const h = detectHostLimits(host({ ...HYBRID, '/proc/self/cgroup': '8:pids:/\n4:memory:/\n' }));
    expect(h.missing.cpu).toBe('no cgroup v1 cpu hierarchy is mounted');
    expect(limitWarnings(h)).toEqual(['cpu (a CPU quota per instance) is not enforced: no cgroup v1 cpu hierarchy is mounted']);
  });

  it('pure v2 with Delegate=yes: everything, under the service cgroup', () => {
    const h = detectHostLimits(host(V2('cpuset cpu io memory pids')));
    expect(h).toEqual({ kind: 'v2', base: V2_SERVICE, missing: { memory: undefined, pids: undefined, cpu: undefined } });
  });

  it('pure v2 without delegation: names the controllers the cgroup has and the fix', () => {
    const h = detectHostLimits(host(V2('memory pids')));
    expect(h.missing.memory).toBeUndefined();
    expect(h.missing.cpu).toMatch(/^the cpu controller is not delegated to cgroup \/system\.slice\/faas-gateway\.service \(its cgroup\.controllers: "memory pids"\): run the gateway as root under systemd with Delegate=yes/);
  });

  it('pure v2, not writable (not root, no delegation to the user): nothing is enforced', () => {
    const h = detectHostLimits(host(V2('cpu memory pids'), () => false));
    expect(Object.values(h.missing).every((why) => why?.includes('is not writable by uid'))).toBe(true);
    expect(limitWarnings(h)).toHaveLength(3);
  });

  it('pure v2, a worker in the supervisor leaf of a delegated cgroup: the delegated cgroup is the base', () => {
    const files = { ...V2('cpu memory pids', '/system.slice/faas-gateway.service/supervisor'), [`${V2_SERVICE}/cgroup.subtree_control`]: 'cpu memory pids' };
    expect(detectHostLimits(host(files)).base).toBe(V2_SERVICE);
    // …but a cgroup merely called supervisor, whose parent enables nothing, is its own base.
    expect(delegatedBase(`${V2_SERVICE}/supervisor`, host({ [`${V2_SERVICE}/cgroup.subtree_control`]: '' }))).toBe(`${V2_SERVICE}/supervisor`);
  });

  it('no cgroup file system: every limit is missing', () => {
    const h = detectHostLimits(host({ '/proc/mounts': 'proc /proc proc rw 0 0\n', '/proc/self/cgroup': '' }));
    expect(h.kind).toBe('none');
    expect(limitWarnings(h)).toHaveLength(3);
  });
});

describe('unenforcedLimit', () => {
  const full = detectHostLimits(host(V2('cpu memory pids')));
  const noCpu = detectHostLimits(host(V2('memory pids')));
  const nothing = detectHostLimits(host(V2('cpu memory pids'), () => false));

  it('serves what the host enforces', () => {
    expect(unenforcedLimit({ mode: 'process', cpu: 0.5 }, full)).toBeUndefined();
    expect(unenforcedLimit({ mode: 'process' }, noCpu)).toBeUndefined();
  });

  it('refuses a row whose cpu cannot be enforced, naming the field, the reason and the way out', () => {
    expect(unenforcedLimit({ mode: 'process', cpu: 0.5 }, noCpu)).toMatch(
      /^v\.cpu: cpu \(a CPU quota per instance\) cannot be enforced on this host \(the cpu controller is not delegated.*\); start the gateway with --allow-unenforced-limits to serve it without$/);
  });

  it('refuses every sandboxed function where memory_mb cannot be a cgroup limit, but not a WebAssembly thread', () => {
    expect(unenforcedLimit({ mode: 'process' }, nothing)).toMatch(/^v\.memory_mb: memory_mb \(a memory limit on the whole sandbox\) cannot be enforced/);
    expect(unenforcedLimit({ mode: 'container' }, nothing)).toMatch(/^v\.memory_mb/);
    expect(unenforcedLimit({ mode: 'thread' }, nothing)).toBeUndefined();
  });
});
