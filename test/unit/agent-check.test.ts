import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentLine, agentPercent, agentState, type AgentState, type AgentWorker } from '../../src/http/agent-check.js';
import { ConfigError, loadGatewayConfig } from '../../src/config.js';

/** HAProxy 2.6's reading of an agent's line (src/tcpcheck.c, tcpcheck_agent_expect_reply), as data. */
function haproxyReads(reply: string): { health?: string; admin?: string; weight?: string; desc: string; unknown: string[]; complete: boolean } {
  const end = reply.search(/[\r\n]/);
  const line = end < 0 ? reply : reply.slice(0, end);
  const hash = line.indexOf('#');
  const words = (hash < 0 ? line : line.slice(0, hash)).split(/[ \t,]+/).filter(Boolean);
  const out: ReturnType<typeof haproxyReads> = { desc: hash < 0 ? '' : line.slice(hash + 1).trim(), unknown: [], complete: end >= 0 };
  for (const w of words) {
    const lower = w.toLowerCase();
    if (['up', 'down', 'stopped', 'fail'].includes(lower)) out.health = lower;
    else if (['ready', 'drain', 'maint'].includes(lower)) out.admin = lower;
    else if (/^\d/.test(w) && w.includes('%')) out.weight = w;
    else out.unknown.push(w);
  }
  return out;
}

const worker = (score: number, inFlight = 0): AgentWorker => ({ score, inFlight });

describe('agentPercent: the node\'s headroom as a percentage of its configured weight', () => {
  it('is 100 for an idle fleet, the free part of each worker otherwise', () => {
    expect(agentPercent([worker(0), worker(0)], 2)).toBe(100);
    expect(agentPercent([worker(10), worker(30)], 2)).toBe(80); // (0.9 + 0.7) / 2
    expect(agentPercent([worker(50)], 1)).toBe(50); // one core busy is 50 points of score
  });

  it('shares a worker with the calls it runs: a new call gets 1/(k+1) of it', () => {
    expect(agentPercent([worker(0, 1)], 1)).toBe(50);
    expect(agentPercent([worker(0, 3)], 1)).toBe(25);
    expect(agentPercent([worker(50, 3), worker(0)], 2)).toBe(56); // (0.5/4 + 1) / 2 = 0.5625
  });

  it('tells apart two gateways whose workers report the same host-wide score by their calls in flight', () => {
    const quiet = agentPercent([worker(40, 0), worker(40, 0)], 2);
    const busy = agentPercent([worker(40, 2), worker(40, 1)], 2);
    expect(quiet).toBe(60);
    expect(busy).toBeLessThan(quiet);
    expect(busy).toBe(25); // (0.6/3 + 0.6/2) / 2
  });

  it('counts a worker that is down as no capacity: half the fleet restarting, half the weight', () => {
    expect(agentPercent([worker(0)], 2)).toBe(50);
    expect(agentPercent([worker(0)], 4)).toBe(25);
  });

  it('is never 0 while up (HAProxy takes 0% for a drain) and never above 100', () => {
    expect(agentPercent([worker(100, 50)], 1)).toBe(1);
    expect(agentPercent([worker(100)], 8)).toBe(1);
    expect(agentPercent([worker(0), worker(0)], 1)).toBe(100); // more available than known (one just joined): at most 100
    expect(agentPercent([worker(-5)], 1)).toBe(100); // scores are checked to be 0–100 on arrival; clamped here all the same
    expect(agentPercent([worker(150)], 1)).toBe(1);
  });

  it('stays within 1..100, an integer, and falls as any worker gets busier (property)', () => {
    const w = fc.record({ score: fc.double({ min: 0, max: 100, noNaN: true }), inFlight: fc.nat(1000) });
    fc.assert(fc.property(fc.array(w, { minLength: 1, maxLength: 20 }), fc.nat(20), fc.nat(19), fc.nat(50), (ws, extra, which, more) => {
      const known = ws.length + extra;
      const p = agentPercent(ws, known);
      expect(Number.isInteger(p) && p >= 1 && p <= 100).toBe(true);
      const i = which % ws.length;
      const busier = ws.map((x, j) => (j === i ? { score: Math.min(100, x.score + more), inFlight: x.inFlight + 1 } : x));
      expect(agentPercent(busier, known)).toBeLessThanOrEqual(p);
    }));
  });
});

describe('agentState: stopping, then no worker, then the weight', () => {
  it('drains while the gateway shuts down, whatever its workers', () => {
    expect(agentState({ stopping: true, available: [worker(0)], known: 1 })).toEqual({ state: 'drain' });
    expect(agentState({ stopping: true, available: [], known: 2 })).toEqual({ state: 'drain' });
  });

  it('is down, with the reason, when no worker is connected and reporting', () => {
    expect(agentState({ stopping: false, available: [], known: 2 }))
      .toEqual({ state: 'down', reason: 'no worker is connected and reporting (0 of 2)' });
  });

  it('is up with the fleet\'s percentage otherwise', () => {
    expect(agentState({ stopping: false, available: [worker(20), worker(0, 1)], known: 2 })).toEqual({ state: 'up', percent: 65 });
  });
});

describe('agentLine: the whole state in HAProxy\'s grammar', () => {
  it('writes each state as one line', () => {
    expect(agentLine({ state: 'up', percent: 75 })).toBe('up ready 75%\n');
    expect(agentLine({ state: 'drain' })).toBe('up drain\n');
    expect(agentLine({ state: 'down', reason: 'no worker' })).toBe('down ready #no worker\n');
    expect(agentLine({ state: 'down', reason: 'a\r\nb' })).toBe('down ready #a b\n');
  });

  it('gives HAProxy a health word and an admin word in every line, so no line leans on an earlier one', () => {
    const states: AgentState[] = [{ state: 'up', percent: 1 }, { state: 'up', percent: 100 }, { state: 'drain' },
      { state: 'down', reason: 'no worker is connected and reporting (0 of 2)' }];
    for (const s of states) {
      const line = agentLine(s);
      expect(line.endsWith('\n') && line.indexOf('\n') === line.length - 1 && !line.includes('\r')).toBe(true);
      const read = haproxyReads(line);
      expect(read.complete).toBe(true);
      expect(read.unknown).toEqual([]);
      expect(read.health).toBe(s.state === 'down' ? 'down' : 'up');
      expect(read.admin).toBe(s.state === 'drain' ? 'drain' : 'ready');
      expect(read.weight).toBe(s.state === 'up' ? `${s.percent}%` : undefined);
      if (s.state === 'down') expect(read.desc).toBe(s.reason);
    }
  });

  it('never says 0%, which HAProxy reads as a drain', () => {
    for (let known = 1; known <= 4; known++) {
      for (const inFlight of [0, 1, 10, 1000]) {
        const line = agentLine(agentState({ stopping: false, available: [worker(100, inFlight)], known }));
        expect(haproxyReads(line).weight).not.toBe('0%');
      }
    }
  });
});

describe('--agent-port and --agent-host', () => {
  it('are off by default, and the host follows --host', () => {
    const c = loadGatewayConfig(['--host', '127.0.0.1'], {});
    expect(c.agentPort).toBeUndefined();
    expect(c.agentHost).toBe('127.0.0.1');
    expect(loadGatewayConfig([], {}).agentHost).toBe('0.0.0.0');
  });

  it('take flags or the environment', () => {
    const c = loadGatewayConfig(['--agent-port', '9300', '--host', '10.0.0.5'], {});
    expect(c.agentPort).toBe(9300);
    expect(c.agentHost).toBe('10.0.0.5');
    const e = loadGatewayConfig([], { FAAS_AGENT_PORT: '9301', FAAS_AGENT_HOST: '127.0.0.1' });
    expect(e.agentPort).toBe(9301);
    expect(e.agentHost).toBe('127.0.0.1');
    expect(Object.isFrozen(e)).toBe(true);
  });

  it('refuse a bad port or host, naming the flag and the rule', () => {
    expect(() => loadGatewayConfig(['--agent-port', '0'], {})).toThrow('--agent-port must be an integer between 1 and 65535 (got "0")');
    expect(() => loadGatewayConfig([], { FAAS_AGENT_PORT: 'http' }))
      .toThrow('FAAS_AGENT_PORT (from --agent-port) must be an integer between 1 and 65535 (got "http")');
    expect(() => loadGatewayConfig(['--agent-port', '9300', '--agent-host', 'a b'], {}))
      .toThrow('--agent-host must be an IP address or host name (got "a b")');
  });

  it('refuse --agent-host without --agent-port rather than ignore it', () => {
    try {
      loadGatewayConfig(['--agent-host', '127.0.0.1'], {});
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual(['--agent-host 127.0.0.1 needs --agent-port N (1–65535): without it the gateway answers no agent-check']);
    }
  });
});
