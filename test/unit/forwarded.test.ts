// The forwarding headers and the client address (src/http/forwarded.ts): address parsing and
// printing, --trusted-proxies, nginx's realip rule, and what the function is handed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clientAddress, formatAddress, forward, isTrusted, parseAddress, parseTrustedProxies, socketAddress, type Address, type Cidr,
} from '../../src/http/forwarded.js';

const addr = (text: string): Address => {
  const a = parseAddress(text);
  if (!a) throw new Error(`${text} did not parse`);
  return a;
};
const trusted = (text: string): readonly Cidr[] => {
  const r = parseTrustedProxies(text);
  if ('error' in r) throw new Error(r.error);
  return r.value;
};
const bytes = (...b: number[]): ArrayBuffer => new Uint8Array(b).buffer;
const V4_PEER = bytes(127, 0, 0, 1);
/** What uWS gives on an IPv6 socket for an IPv4 client: the mapped form. */
const MAPPED_PEER = bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 5);
const obj = (headers: string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) out[headers[i]!] = headers[i + 1]!;
  return out;
};

describe('addresses', () => {
  it('reads dotted IPv4 and every IPv6 form, and writes IPv4-mapped back as IPv4', () => {
    expect(formatAddress(addr('192.0.2.1'))).toBe('192.0.2.1');
    expect(formatAddress(addr('0000:0000:0000:0000:0000:ffff:7f00:0001'))).toBe('127.0.0.1'); // uWS's text for a mapped peer
    expect(formatAddress(addr('::ffff:192.0.2.1'))).toBe('192.0.2.1');
    expect(formatAddress(addr('0000:0000:0000:0000:0000:0000:0000:0001'))).toBe('::1');
    expect(formatAddress(addr('2001:DB8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1'); // the first of two equal runs
    expect(formatAddress(addr('2001:db8:0:1:1:1:1:1'))).toBe('2001:db8:0:1:1:1:1:1'); // one zero group stays
    expect(formatAddress(addr('::'))).toBe('::');
    expect(formatAddress(addr('fe80::'))).toBe('fe80::');
    expect(formatAddress(addr('64:ff9b::192.0.2.33'))).toBe('64:ff9b::c000:221');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['', 'unknown', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4:80', '[::1]', '1::2::3', ':::',
      '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', '::1.2.3', '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0']) {
      expect(parseAddress(bad), bad).toBeUndefined();
    }
  });

  it('prints IPv6 as the URL standard does (RFC 5952), and reads back what it printed', () => {
    const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
      const a = new Uint8Array(16);
      groups.forEach((g, i) => { a[i * 2] = g >> 8; a[i * 2 + 1] = g & 0xff; });
      const text = formatAddress(a);
      expect(parseAddress(text)).toEqual(a);
      const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
      if (!mapped) expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
    }));
  });

  it('takes the socket address in both of the forms uWS gives', () => {
    expect(formatAddress(socketAddress(V4_PEER)!)).toBe('127.0.0.1');
    expect(formatAddress(socketAddress(MAPPED_PEER)!)).toBe('10.0.0.5');
    expect(socketAddress(new ArrayBuffer(0))).toBeUndefined();
  });
});

describe('--trusted-proxies', () => {
  it('takes CIDRs and bare addresses of both families', () => {
    const list = trusted(' 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1');
    expect(isTrusted(list, addr('10.255.0.1'))).toBe(true);
    expect(isTrusted(list, addr('::ffff:10.1.2.3'))).toBe(true); // an IPv4 client on an IPv6 socket
    expect(isTrusted(list, addr('11.0.0.1'))).toBe(false);
    expect(isTrusted(list, addr('192.0.2.7'))).toBe(true);
    expect(isTrusted(list, addr('192.0.2.8'))).toBe(false);
    expect(isTrusted(list, addr('fd12:3456::1'))).toBe(true);
    expect(isTrusted(list, addr('fe00::1'))).toBe(false);
    expect(isTrusted(list, addr('::1'))).toBe(true);
    expect(trusted('')).toEqual([]);
  });

  it('matches prefixes that end inside a byte, and /0', () => {
    expect(isTrusted(trusted('172.16.0.0/12'), addr('172.31.255.255'))).toBe(true);
    expect(isTrusted(trusted('172.16.0.0/12'), addr('172.32.0.0'))).toBe(false);
    expect(isTrusted(trusted('0.0.0.0/0'), addr('203.0.113.9'))).toBe(true);
    expect(isTrusted(trusted('0.0.0.0/0'), addr('2001:db8::1'))).toBe(false);
    expect(isTrusted(trusted('::/0'), addr('2001:db8::1'))).toBe(true);
  });

  it('names the bad entry and the rule', () => {
    expect(parseTrustedProxies('10.0.0.0/8,10.0.0.0/33')).toEqual({ error:
      'must be IP addresses or CIDRs separated by commas (10.0.0.0/8,192.0.2.7,fd00::/8); "10.0.0.0/33" needs a prefix length between 0 and 32' });
    expect(parseTrustedProxies('fd00::/129')).toMatchObject({ error: expect.stringContaining('"fd00::/129" needs a prefix length between 0 and 128') });
    expect(parseTrustedProxies('10.0.0.0/8,lb.internal')).toMatchObject({ error: expect.stringContaining('"lb.internal" is not an IP address') });
    expect(parseTrustedProxies('10.0.0.0/x')).toMatchObject({ error: expect.stringContaining('"10.0.0.0/x" needs a prefix length') });
  });
});

describe('the client address (nginx realip, recursive)', () => {
  const proxies = trusted('10.0.0.0/8');

  it('is the peer when the peer is not trusted, whatever X-Forwarded-For says', () => {
    expect(formatAddress(clientAddress(addr('203.0.113.9'), proxies, '1.1.1.1'))).toBe('203.0.113.9');
    expect(formatAddress(clientAddress(addr('10.0.0.2'), [], '1.1.1.1'))).toBe('10.0.0.2');
  });

  it('is the right-most address that is not trusted, behind a trusted peer', () => {
    expect(formatAddress(clientAddress(addr('10.0.0.2'), proxies, '198.51.100.1, 203.0.113.9, 10.0.0.3'))).toBe('203.0.113.9');
    expect(formatAddress(clientAddress(addr('10.0.0.2'), proxies, '203.0.113.9'))).toBe('203.0.113.9');
    expect(formatAddress(clientAddress(addr('10.0.0.2'), proxies, '10.0.0.9, 10.0.0.3'))).toBe('10.0.0.9'); // all trusted: the left-most
    expect(formatAddress(clientAddress(addr('10.0.0.2'), proxies, undefined))).toBe('10.0.0.2');
  });

  it('stops at an entry that is no address', () => {
    expect(formatAddress(clientAddress(addr('10.0.0.2'), proxies, '203.0.113.9, unknown, 10.0.0.3'))).toBe('10.0.0.3');
    expect(formatAddress(clientAddress(addr('10.0.0.2'), proxies, 'garbage'))).toBe('10.0.0.2');
  });
});

describe('forward', () => {
  it('drops what an untrusted client sent and sets the chain from the connection', () => {
    const headers = ['host', 'api.example:8080', 'x-forwarded-for', '6.6.6.6', 'forwarded', 'for=6.6.6.6', 'x-forwarded-proto', 'https',
      'x-forwarded-host', 'evil.example', 'x-real-ip', '6.6.6.6', 'accept', '*/*'];
    expect(forward(headers, V4_PEER, trusted('10.0.0.0/8'))).toBe('127.0.0.1');
    expect(obj(headers)).toEqual({
      host: 'api.example:8080', accept: '*/*', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http',
      'x-forwarded-host': 'api.example:8080', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1;host="api.example:8080";proto=http',
    });
  });

  it('keeps and appends to a trusted proxy\'s chain, and finds the client in it', () => {
    const headers = ['host', 'api.example', 'x-forwarded-for', '203.0.113.9', 'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'https',
      'x-forwarded-host', 'www.example', 'forwarded', 'for=203.0.113.9;proto=https'];
    expect(forward(headers, MAPPED_PEER, trusted('10.0.0.0/8'))).toBe('203.0.113.9');
    expect(obj(headers)).toEqual({
      host: 'api.example', 'x-forwarded-for': '203.0.113.9, 10.0.0.9, 10.0.0.5', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'www.example',
      'x-real-ip': '203.0.113.9', forwarded: 'for=203.0.113.9;proto=https, for=10.0.0.5;host=api.example;proto=http',
    });
  });

  it('quotes an IPv6 node in Forwarded, and leaves out the host when there is none', () => {
    const headers: string[] = [];
    expect(forward(headers, bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), [])).toBe('2001:db8::1');
    expect(obj(headers)).toEqual({ 'x-forwarded-for': '2001:db8::1', 'x-forwarded-proto': 'http', 'x-real-ip': '2001:db8::1',
      forwarded: 'for="[2001:db8::1]";proto=http' });
  });
});
