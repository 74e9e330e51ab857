// Who the client is, and the forwarding headers the function sees: X-Forwarded-For,
// X-Forwarded-Proto, X-Forwarded-Host, X-Real-IP and Forwarded (RFC 7239), as nginx sets them
// behind `proxy_set_header`. Pure: the server hands in the socket's address and the headers.
//
// Trust: a chain the client sent (X-Forwarded-*, Forwarded) is kept, and appended to as nginx's
// $proxy_add_x_forwarded_for does, only when the connection comes from an address in
// --trusted-proxies; from anyone else it is dropped, since any client can write any header. The
// client address is nginx's `real_ip_recursive on` rule: the peer, or when the peer is trusted,
// the right-most address of X-Forwarded-For that is not itself trusted (the left-most if all are).
//
// Addresses are held as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one CIDR match
// covers both families; they are written back as dotted IPv4 or compressed IPv6 (RFC 5952).

/** An IP address as 16 bytes. */
export type Address = Uint8Array;

/** A --trusted-proxies entry: `bits` leading bits of `address` (IPv4 /n is /96+n here). */
export interface Cidr {
  readonly address: Address;
  readonly bits: number;
}

export const TRUSTED_PROXIES_RULE = 'must be IP addresses or CIDRs separated by commas (10.0.0.0/8,192.0.2.7,fd00::/8)';

const V4_OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const V6_GROUP = /^[0-9A-Fa-f]{1,4}$/;
/** RFC 7230 token characters: a Forwarded value made of them needs no quotes. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Dotted IPv4 or any IPv6 text form (embedded IPv4 included); undefined when it is neither. */
export function parseAddress(text: string): Address | undefined {
  return text.includes(':') ? parseV6(text) : parseV4(text, new Uint8Array(16), 12, true);
}

function parseV4(text: string, into: Uint8Array, at: number, mapped: boolean): Address | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => V4_OCTET.test(p))) return undefined;
  parts.forEach((p, i) => (into[at + i] = Number(p)));
  if (mapped) into[10] = into[11] = 0xff;
  return into;
}

function parseV6(text: string): Address | undefined {
  const out = new Uint8Array(16);
  let head = text;
  let groupsMax = 8;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) { // an embedded IPv4 tail: ::ffff:192.0.2.1
    if (!parseV4(text.slice(lastColon + 1), out, 12, false)) return undefined;
    head = text.slice(0, lastColon);
    if (head.endsWith(':')) head += ':';
    groupsMax = 6;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] | undefined => {
    if (s === '') return [];
    const g = s.split(':');
    return g.every((x) => V6_GROUP.test(x)) ? g : undefined;
  };
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (!left || !right) return undefined;
  const count = left.length + right.length;
  if (halves.length === 1 ? count !== groupsMax : count > groupsMax - 1) return undefined;
  const put = (g: string, i: number): void => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  };
  left.forEach((g, i) => put(g, i));
  right.forEach((g, i) => put(g, groupsMax - right.length + i));
  return out;
}

/** The socket's address as uWS gives it (4 bytes on an IPv4 socket, 16 on an IPv6 one); undefined when empty. */
export function socketAddress(raw: ArrayBuffer): Address | undefined {
  const bytes = new Uint8Array(raw);
  if (bytes.length === 16) return bytes;
  if (bytes.length !== 4) return undefined;
  const out = new Uint8Array(16);
  out[10] = out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

/** IPv4-mapped as dotted IPv4, any other as RFC 5952 IPv6: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
export function formatAddress(a: Address): string {
  if (isMapped(a)) return `${a[12]}.${a[13]}.${a[14]}.${a[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((a[i]! << 8) | a[i + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  return bestAt < 0 ? hex(0, 8) : `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

function isMapped(a: Address): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/** `--trusted-proxies`: "10.0.0.0/8,192.0.2.7,fd00::/8" (a bare address is /32 or /128); empty trusts nobody. */
export function parseTrustedProxies(text: string): { value: readonly Cidr[] } | { error: string } {
  const out: Cidr[] = [];
  for (const entry of text.split(',').map((s) => s.trim())) {
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const address = parseAddress(slash < 0 ? entry : entry.slice(0, slash));
    if (!address) return { error: `${TRUSTED_PROXIES_RULE}; ${JSON.stringify(entry)} is not an IP address` };
    const v4 = isMapped(address) && !entry.includes(':');
    const max = v4 ? 32 : 128;
    const prefix = slash < 0 ? String(max) : entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
      return { error: `${TRUSTED_PROXIES_RULE}; ${JSON.stringify(entry)} needs a prefix length between 0 and ${max}` };
    }
    out.push(Object.freeze({ address, bits: Number(prefix) + (v4 ? 96 : 0) }));
  }
  return { value: Object.freeze(out) };
}

export function isTrusted(trusted: readonly Cidr[], a: Address): boolean {
  return trusted.some((c) => inCidr(c, a));
}

function inCidr({ address, bits }: Cidr, a: Address): boolean {
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== a[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[whole]! & mask) === (a[whole]! & mask);
}

/**
 * The client behind a trusted peer: X-Forwarded-For read from the right, skipping trusted
 * addresses. An entry that is no address (`unknown`, a port, garbage) ends the walk at the last
 * good one, as nginx's realip does not look past what it cannot read.
 */
export function clientAddress(peer: Address, trusted: readonly Cidr[], xff: string | undefined): Address {
  if (xff === undefined || !isTrusted(trusted, peer)) return peer;
  let client = peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseAddress(hops[i]!.trim());
    if (!hop) break;
    client = hop;
    if (!isTrusted(trusted, hop)) break;
  }
  return client;
}

/** What the client sent of the headers the gateway sets; repeated lines joined as one list (RFC 9110 §5.3). */
interface Sent {
  xff?: string;
  forwarded?: string;
  proto?: string;
  host?: string;
  /** The Host header. */
  requestHost?: string;
}

/**
 * Replaces the forwarding headers in `headers` (flat [name, value, …], lower-case names) with
 * the gateway's, and returns the client's address as text. `peerRaw` is the socket's address.
 * On every call's path: one pass over the headers, and a splice only when the client sent some.
 */
export function forward(headers: string[], peerRaw: ArrayBuffer, trusted: readonly Cidr[]): string {
  const bytes = new Uint8Array(peerRaw);
  const peerText = bytes.length === 4 ? `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}` : bytes.length === 16 ? formatAddress(bytes) : 'unknown';
  const peer = trusted.length > 0 ? socketAddress(peerRaw) : undefined;
  const fromProxy = peer !== undefined && isTrusted(trusted, peer);
  const sent: Sent = {};
  let found = false;
  for (let i = 0; i < headers.length; i += 2) {
    const value = headers[i + 1]!;
    switch (headers[i]) {
      case 'host': sent.requestHost ??= value; continue;
      case 'x-forwarded-for': sent.xff = sent.xff === undefined ? value : `${sent.xff}, ${value}`; break;
      case 'forwarded': sent.forwarded = sent.forwarded === undefined ? value : `${sent.forwarded}, ${value}`; break;
      case 'x-forwarded-proto': sent.proto ??= value; break;
      case 'x-forwarded-host': sent.host ??= value; break;
      case 'x-real-ip': break;
      default: continue;
    }
    found = true;
  }
  if (found) for (let i = headers.length - 2; i >= 0; i -= 2) if (SET_HERE.has(headers[i]!)) headers.splice(i, 2);
  const host = sent.requestHost;
  const client = fromProxy ? formatAddress(clientAddress(peer, trusted, sent.xff)) : peerText;
  headers.push('x-forwarded-for', fromProxy && sent.xff !== undefined ? `${sent.xff}, ${peerText}` : peerText);
  headers.push('x-forwarded-proto', (fromProxy ? sent.proto : undefined) ?? 'http');
  const forwardedHost = (fromProxy ? sent.host : undefined) ?? host;
  if (forwardedHost !== undefined) headers.push('x-forwarded-host', forwardedHost);
  headers.push('x-real-ip', client);
  const element = `for=${forwardedNode(peerText)}${host === undefined ? '' : `;host=${forwardedValue(host)}`};proto=http`;
  headers.push('forwarded', fromProxy && sent.forwarded !== undefined ? `${sent.forwarded}, ${element}` : element);
  return client;
}

/** Request headers the gateway sets; what the client sent of them is dropped unless its peer is trusted. */
const SET_HERE = new Set(['x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip']);

/** RFC 7239 §6: an IPv6 node is bracketed, and so quoted. */
function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

/** A token as it is, anything else (host:port) as a quoted-string; the last one kept, as most requests name one host. */
let lastHost = '';
let lastHostValue = '';
function forwardedValue(text: string): string {
  if (text !== lastHost) {
    lastHost = text;
    lastHostValue = TOKEN.test(text) ? text : `"${text.replace(/["\\]/g, '\\$&')}"`;
  }
  return lastHostValue;
}
