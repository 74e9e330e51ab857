import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadGatewayConfig, loadWorkerConfig } from '../../src/config.js';
import { parseCpuList } from '../../src/host/cpus.js';

describe('loadGatewayConfig', () => {
  it('takes flags over environment over defaults', () => {
    const c = loadGatewayConfig(['--port', '81', '--workers=3'], { FAAS_PORT: '82', FAAS_SYNC_MS: '1000' });
    expect(c.port).toBe(81);
    expect(c.workers).toBe(3);
    expect(c.syncMs).toBe(1000);
    expect(c.adminPort).toBe(9090);
    expect(c.reportMs).toBe(500);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('lists every problem at once and never turns a bad value into a default', () => {
    try {
      loadGatewayConfig(['--port', 'abc', '--workers', '0', '--bogus', '1'], { FAAS_SYNC_MS: '5s' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(4);
      expect(problems.join('\n')).toContain('--port must be an integer between 0 and 65535 (got "abc")');
      expect(problems.join('\n')).toContain('--workers must be an integer between 1 and 256 (got "0")');
      expect(problems.join('\n')).toContain('FAAS_SYNC_MS (from --sync-ms) must be an integer between 50 and 3600000 (got "5s")');
      expect(problems.join('\n')).toContain('unknown option "--bogus"');
    }
  });

  it('pins workers only when asked, with on or off', () => {
    expect(loadGatewayConfig([], {}).pin).toBe('off');
    expect(loadGatewayConfig(['--pin', 'on'], {}).pin).toBe('on');
    expect(loadGatewayConfig([], { FAAS_PIN: 'on' }).pin).toBe('on');
    expect(() => loadGatewayConfig(['--pin', 'yes'], {})).toThrow('--pin must be one of off, on (got "yes")');
  });

  it('takes the scheduling policy from --policy or FAAS_POLICY, and refuses another', () => {
    expect(loadGatewayConfig([], {}).policy).toBe('least-loaded');
    expect(loadGatewayConfig([], { FAAS_POLICY: 'round-robin' }).policy).toBe('round-robin');
    expect(() => loadGatewayConfig(['--policy', 'fastest'], {}))
      .toThrow('--policy must be one of least-loaded, two-choices, lowest-score, least-in-flight, round-robin, random (got "fastest")');
  });

  it('takes --allow-unenforced-limits as a switch, =on/off, or FAAS_ALLOW_UNENFORCED_LIMITS, and refuses anything else', () => {
    expect(loadGatewayConfig([], {}).allowUnenforcedLimits).toBe(false);
    expect(loadGatewayConfig(['--allow-unenforced-limits', '--port', '81'], {})).toMatchObject({ allowUnenforcedLimits: true, port: 81 });
    expect(loadGatewayConfig(['--allow-unenforced-limits=off'], {}).allowUnenforcedLimits).toBe(false);
    expect(loadGatewayConfig([], { FAAS_ALLOW_UNENFORCED_LIMITS: '1' }).allowUnenforcedLimits).toBe(true);
    expect(() => loadGatewayConfig(['--allow-unenforced-limits=maybe'], {})).toThrow('--allow-unenforced-limits must be on or off (got "maybe")');
  });

  it('takes --trusted-proxies as CIDRs and addresses, trusting nobody by default, and names a bad entry', () => {
    expect(loadGatewayConfig([], {}).trustedProxies).toEqual([]);
    expect(loadGatewayConfig(['--trusted-proxies', '10.0.0.0/8,::1'], {}).trustedProxies).toHaveLength(2);
    expect(loadGatewayConfig([], { FAAS_TRUSTED_PROXIES: '192.0.2.7' }).trustedProxies).toHaveLength(1);
    expect(() => loadGatewayConfig(['--trusted-proxies', '10.0.0.0/8,10.1.2.3/40'], {})).toThrow('--trusted-proxies must be IP addresses or CIDRs '
      + 'separated by commas (10.0.0.0/8,192.0.2.7,fd00::/8); "10.1.2.3/40" needs a prefix length between 0 and 32 (got "10.0.0.0/8,10.1.2.3/40")');
    expect(() => loadGatewayConfig([], { FAAS_TRUSTED_PROXIES: 'lb.internal' }))
      .toThrow('FAAS_TRUSTED_PROXIES (from --trusted-proxies) must be IP addresses or CIDRs separated by commas (10.0.0.0/8,192.0.2.7,fd00::/8); "lb.internal" is not an IP address');
  });

  it('says Server: faas unless --server-header gives another value or off', () => {
    expect(loadGatewayConfig([], {}).serverHeader).toBe('faas');
    expect(loadGatewayConfig(['--server-header', 'acme-edge/1.2'], {}).serverHeader).toBe('acme-edge/1.2');
    expect(loadGatewayConfig([], { FAAS_SERVER_HEADER: 'off' }).serverHeader).toBeUndefined();
    expect(() => loadGatewayConfig(['--server-header', 'a\r\nSet-Cookie: x=1'], {})).toThrow(/^invalid configuration:\n {2}- --server-header must be off, or a header value/);
  });

  it('takes --cluster-db as a postgres:// URL without a password, and its password from a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-cfg-'));
    try {
      const file = path.join(dir, 'pw');
      fs.writeFileSync(file, 'secret\n', { mode: 0o600 });
      expect(loadGatewayConfig(['--cluster-db', 'postgres://faas@db:5432/faas', '--cluster-db-password-file', file], {}))
        .toMatchObject({ clusterDb: 'postgres://faas@db:5432/faas', clusterDbPasswordFile: file });
      expect(loadGatewayConfig([], {}).clusterDb).toBeUndefined();
      expect(() => loadGatewayConfig(['--cluster-db', 'postgres://faas:secret@db/faas'], {})).toThrow(/must not hold a password .*--cluster-db-password-file/);
      expect(() => loadGatewayConfig(['--cluster-db', 'mysql://db/faas'], {})).toThrow(/must start with postgres:\/\//);
      expect(() => loadGatewayConfig(['--cluster-db', 'postgres://faas@db'], {})).toThrow(/must name a database/);
      expect(() => loadGatewayConfig(['--cluster-db-password-file', file], {})).toThrow(/which is not set/);
      fs.chmodSync(file, 0o644);
      expect(() => loadGatewayConfig(['--cluster-db', 'postgres://faas@db/faas', '--cluster-db-password-file', file], {})).toThrow(/readable by every user/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs a value after a flag', () => {
    expect(() => loadGatewayConfig(['--port'], {})).toThrow(/--port needs a value/);
  });
});

describe('loadWorkerConfig', () => {
  it('validates the worker id', () => {
    expect(loadWorkerConfig(['--id', 'w-1.a'], {}).id).toBe('w-1.a');
    expect(() => loadWorkerConfig(['--id', 'bad id'], {})).toThrow(/--id must be 1–64 characters/);
  });

  it('takes the process sandbox from --sandbox or FAAS_SANDBOX, and refuses another', () => {
    expect(loadWorkerConfig([], {}).sandbox).toBe('auto');
    expect(loadWorkerConfig([], { FAAS_SANDBOX: 'unshare' }).sandbox).toBe('unshare');
    expect(() => loadWorkerConfig(['--sandbox', 'chroot'], {})).toThrow('--sandbox must be one of auto, bwrap, unshare (got "chroot")');
  });
});

describe('parseCpuList', () => {
  it('reads the kernel\'s CPU lists, as in Cpus_allowed_list', () => {
    expect(parseCpuList('0')).toEqual([0]);
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('3,1-2')).toEqual([1, 2, 3]);
  });

  it('is undefined for anything else', () => {
    for (const bad of ['', 'a', '3-1', '1,,2', '-1', '0-99999']) expect(parseCpuList(bad)).toBeUndefined();
  });
});
