// IP literals and the private-address block of SPEC §4. Pure: no DNS, no sockets.
//
// Two jobs. canonicalIp() turns every spelling of an address that a resolver or curl would
// accept into one canonical string, so that policy compares what the socket will dial.
// classifyAddress() says which special-purpose range an address is in, so that the proxy
// can refuse loopback, metadata and internal networks after DNS resolution.

import { isIPv6 } from 'node:net';

export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'unspecified'
  | 'reserved'
  | 'broadcast';

export interface CanonicalIp {
  family: 4 | 6;
  address: string;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * One part of an inet_aton address: `0x`-prefixed hex, `0`-prefixed octal, else decimal.
 * glibc, curl and the WHATWG URL parser all read `0x7f.1`, `0177.0.0.1` and `2130706433` as
 * 127.0.0.1; if we only understood dotted quads, those spellings would walk past the block.
 */
function parseIpv4Part(part: string): number | null {
  let digits = part;
  let radix = 10;
  if (/^0x/i.test(part)) {
    digits = part.slice(2);
    radix = 16;
    // `0x` alone is 0 for the WHATWG parser; accept it like they do rather than guess.
    if (digits === '') return 0;
    if (!/^[0-9a-f]+$/i.test(digits)) return null;
  } else if (part.length > 1 && part.startsWith('0')) {
    digits = part.slice(1);
    radix = 8;
    if (!/^[0-7]+$/.test(digits)) return null;
  } else if (!/^[0-9]+$/.test(part)) {
    return null;
  }
  // Bound the length before parseInt so huge inputs cannot lose precision into a valid value.
  if (digits.replace(/^0+/, '').length > 12) return null;
  const value = parseInt(digits, radix);
  return Number.isSafeInteger(value) ? value : null;
}

/** inet_aton: 1 to 4 parts; the last part fills all the remaining bytes (`127.1` = 127.0.0.1). */
function parseIpv4(raw: string): number[] | null {
  const parts = raw.split('.');
  if (parts.length > 4 || parts.some((p) => p === '')) return null;
  const values: number[] = [];
  for (const part of parts) {
    const value = parseIpv4Part(part);
    if (value === null) return null;
    values.push(value);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255)) return null;
  const lastBytes = 4 - values.length;
  if (last >= 2 ** (8 * lastBytes)) return null;
  const bytes = [...values];
  for (let i = lastBytes - 1; i >= 0; i--) bytes.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return bytes;
}

/** Strict dotted quad (used inside IPv6 and for CIDRs, where inet_aton forms only confuse). */
function parseDottedQuad(raw: string): number[] | null {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(raw);
  if (!match) return null;
  const bytes = match.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** Eight 16-bit groups. Zone ids (`fe80::1%eth0`) are refused: a policy cannot reason about them. */
function parseIpv6(raw: string): number[] | null {
  if (raw.includes('%') || !isIPv6(raw)) return null;
  let text = raw.toLowerCase();
  // A trailing dotted quad (`::ffff:1.2.3.4`) is two groups written in decimal: rewrite it in hex.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const bytes = parseDottedQuad(v4[1] as string);
    if (!bytes) return null;
    const [a, b, c, d] = bytes as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = toGroups(halves[0] as string);
  const rest = halves.length === 2 ? toGroups(halves[1] as string) : [];
  if (head.some(Number.isNaN) || rest.some(Number.isNaN)) return null;
  if (halves.length === 2) {
    const zeros = 8 - head.length - rest.length;
    if (zeros < 1) return null;
    return [...head, ...new Array<number>(zeros).fill(0), ...rest];
  }
  return head.length === 8 ? head : null;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * The canonical form of an IP literal, or null when `raw` is not one. IPv4 in any inet_aton
 * spelling becomes a dotted quad; IPv6 (brackets optional) becomes RFC 5952 text, mapped
 * addresses in hex (`::ffff:7f00:1`), the form the WHATWG URL parser also produces.
 */
export function canonicalIp(raw: string): CanonicalIp | null {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 64) return null;
  const bracketed = raw.startsWith('[') && raw.endsWith(']');
  const text = bracketed ? raw.slice(1, -1) : raw;
  if (text.includes(':')) {
    const groups = parseIpv6(text);
    return groups ? { family: 6, address: formatIpv6(groups) } : null;
  }
  if (bracketed) return null;
  const bytes = parseIpv4(text);
  return bytes ? { family: 4, address: bytes.join('.') } : null;
}

/** Address as bytes (4 or 16), for range checks. */
function toBytes(address: string): number[] | null {
  const ip = canonicalIp(address);
  if (!ip) return null;
  if (ip.family === 4) return ip.address.split('.').map(Number);
  const groups = parseIpv6(ip.address) as number[];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

function inPrefix(bytes: readonly number[], network: readonly number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit += 8) {
    const i = bit / 8;
    const take = Math.min(8, prefix - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i] as number) & mask) !== ((network[i] as number) & mask)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Classification

type Range = readonly [network: number[], prefix: number, cls: AddressClass];

// Order matters only where ranges nest: the first hit wins (255.255.255.255 before 240/4).
const IPV4_RANGES: readonly Range[] = [
  // "This network". Linux routes 0.0.0.0 (and 0.x) to the local host: a classic localhost bypass.
  [[0, 0, 0, 0], 8, 'unspecified'],
  // Loopback: the proxy's own admin API and every local daemon listen here.
  [[127, 0, 0, 0], 8, 'loopback'],
  // RFC 1918 internal networks.
  [[10, 0, 0, 0], 8, 'private'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 168, 0, 0], 16, 'private'],
  // Link-local, home of the cloud metadata service 169.254.169.254 (credentials of the host VM).
  [[169, 254, 0, 0], 16, 'link_local'],
  // RFC 6598 carrier-grade NAT: internal to providers, and used by some clouds for services.
  [[100, 64, 0, 0], 10, 'cgnat'],
  // IETF protocol assignments (192.0.0.0/24), e.g. DS-Lite and NAT64 discovery: never a web server.
  [[192, 0, 0, 0], 24, 'reserved'],
  // Documentation ranges (RFC 5737): nothing legitimate lives there.
  [[192, 0, 2, 0], 24, 'reserved'],
  [[198, 51, 100, 0], 24, 'reserved'],
  [[203, 0, 113, 0], 24, 'reserved'],
  // Deprecated 6to4 relay anycast (RFC 7526): would tunnel traffic through an unknown relay.
  [[192, 88, 99, 0], 24, 'reserved'],
  // Benchmarking (RFC 2544): often used for lab and internal networks.
  [[198, 18, 0, 0], 15, 'reserved'],
  // Multicast: not a unicast destination; a tunnel there has no business existing.
  [[224, 0, 0, 0], 4, 'multicast'],
  // Limited broadcast, before the 240/4 range that contains it.
  [[255, 255, 255, 255], 32, 'broadcast'],
  // Former class E, reserved for future use.
  [[240, 0, 0, 0], 4, 'reserved'],
];

function classifyIpv4(bytes: readonly number[]): AddressClass {
  for (const [network, prefix, cls] of IPV4_RANGES) {
    if (inPrefix(bytes, network, prefix)) return cls;
  }
  return 'public';
}

const v6 = (text: string): number[] => toBytes(text) as number[];

// IPv6 prefixes that carry an IPv4 address: classify the embedded address, otherwise
// `::ffff:127.0.0.1` or `64:ff9b::a9fe:a9fe` (169.254.169.254 through NAT64) would be "public".
// [network, prefix, byte offset of the embedded IPv4 address]
const IPV6_EMBEDDING: readonly (readonly [number[], number, number])[] = [
  // IPv4-mapped (::ffff:a.b.c.d): dual-stack sockets dial the IPv4 address directly.
  [v6('::ffff:0:0'), 96, 12],
  // IPv4-translated (SIIT, ::ffff:0:a.b.c.d, RFC 2765).
  [v6('::ffff:0:0:0'), 96, 12],
  // NAT64 well-known prefix (RFC 6052): the NAT64 gateway dials the embedded IPv4 address.
  [v6('64:ff9b::'), 96, 12],
  // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 is routed to the IPv4 host AA.BB.CC.DD.
  [v6('2002::'), 16, 2],
  // IPv4-compatible (deprecated, ::a.b.c.d); checked last since :: and ::1 sit inside it.
  [v6('::'), 96, 12],
];

const IPV6_RANGES: readonly Range[] = [
  [v6('::'), 128, 'unspecified'],
  [v6('::1'), 128, 'loopback'],
  // Unique local addresses (fc00::/7): the IPv6 RFC 1918.
  [v6('fc00::'), 7, 'private'],
  // Site-local (deprecated, RFC 3879) but still routed internally in old networks.
  [v6('fec0::'), 10, 'private'],
  // Link-local; also where some clouds put metadata over IPv6 (fd00:ec2::254 is ULA, above).
  [v6('fe80::'), 10, 'link_local'],
  [v6('ff00::'), 8, 'multicast'],
  // Local-use NAT64 prefix (RFC 8215): embeds IPv4 at a deployment-specific offset we cannot know.
  [v6('64:ff9b:1::'), 48, 'reserved'],
  // Discard-only (RFC 6666).
  [v6('100::'), 64, 'reserved'],
  // Teredo (RFC 4380): tunnels to an obfuscated IPv4 address we would have to decode to check.
  [v6('2001::'), 32, 'reserved'],
  // ORCHID and ORCHIDv2: identifiers, not routable locators.
  [v6('2001:10::'), 28, 'reserved'],
  [v6('2001:20::'), 28, 'reserved'],
  // Documentation (RFC 3849, RFC 9637).
  [v6('2001:db8::'), 32, 'reserved'],
  [v6('3fff::'), 20, 'reserved'],
];

function classifyIpv6(bytes: readonly number[]): AddressClass {
  // Exact ranges first: :: and ::1 sit inside the IPv4-compatible prefix.
  for (const [network, prefix, cls] of IPV6_RANGES) {
    if (inPrefix(bytes, network, prefix)) return cls;
  }
  for (const [network, prefix, offset] of IPV6_EMBEDDING) {
    if (inPrefix(bytes, network, prefix)) return classifyIpv4(bytes.slice(offset, offset + 4));
  }
  // Only 2000::/3 is allocated for global unicast; anything else is unassigned space.
  if (!inPrefix(bytes, v6('2000::'), 3)) return 'reserved';
  return 'public';
}

/**
 * Which special-purpose range `address` is in. Accepts any spelling canonicalIp() accepts.
 * A string that is not an IP address is 'reserved': callers block on anything but 'public',
 * so garbage fails closed.
 */
export function classifyAddress(address: string): AddressClass {
  const bytes = toBytes(address);
  if (!bytes) return 'reserved';
  return bytes.length === 4 ? classifyIpv4(bytes) : classifyIpv6(bytes);
}

// ---------------------------------------------------------------------------------------------
// CIDRs (upstream.allowPrivateNetworks)

export interface Cidr {
  family: 4 | 6;
  bytes: number[];
  prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`. */
  text: string;
}

/**
 * `10.0.0.0/8`, `fd00::/8`, or a bare address (a single host). IPv4 must be a dotted quad here:
 * in inet_aton, `10/8` would read as 0.0.0.10/8, which is never what an operator meant.
 * Host bits set after the prefix (`10.0.0.1/8`) are refused as a probable typo.
 */
export function parseCidr(s: string): Cidr {
  const fail = (why: string): never => {
    throw new Error(`${JSON.stringify(s)}: ${why}`);
  };
  if (typeof s !== 'string' || s.trim() === '') return fail('expected a CIDR such as "10.0.0.0/8"');
  const [addressText = '', prefixText, extra] = s.split('/');
  if (extra !== undefined) fail('expected a CIDR such as "10.0.0.0/8"');
  let family: 4 | 6;
  let bytes: number[];
  if (addressText.includes(':')) {
    const groups = parseIpv6(addressText);
    if (!groups) return fail('not a valid IPv6 address');
    family = 6;
    bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  } else {
    const quad = parseDottedQuad(addressText);
    if (!quad) return fail('not a valid IPv4 address (use a dotted quad such as 10.0.0.0)');
    family = 4;
    bytes = quad;
  }
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) fail(`prefix length must be 0-${max}`);
    prefix = Number(prefixText);
  }
  for (let bit = prefix; bit < max; bit++) {
    if (((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) {
      const network = bytes.map((b, i) => {
        const keep = Math.max(0, Math.min(8, prefix - i * 8));
        return b & ((0xff << (8 - keep)) & 0xff);
      });
      const shown = family === 4 ? network.join('.') : formatIpv6(groupsOf(network));
      fail(`host bits are set after the /${prefix} prefix (did you mean ${shown}/${prefix}?)`);
    }
  }
  const base = family === 4 ? bytes.join('.') : formatIpv6(groupsOf(bytes));
  return { family, bytes, prefix, text: `${base}/${prefix}` };
}

function groupsOf(bytes: readonly number[]): number[] {
  const groups: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  return groups;
}

/** The error message for an invalid CIDR, or null when it is valid (for config validation). */
export function validateCidr(s: string): string | null {
  try {
    parseCidr(s);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const MAPPED_PREFIX = v6('::ffff:0:0');

/** A set of networks. The lists are short (an operator's exemptions), so a scan is enough. */
export class CidrSet {
  private readonly v4: Cidr[] = [];
  private readonly v6: Cidr[] = [];

  constructor(cidrs: string[]) {
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      (cidr.family === 4 ? this.v4 : this.v6).push(cidr);
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  /** The first network containing `address`, or undefined. */
  find(address: string): Cidr | undefined {
    const bytes = toBytes(address);
    if (!bytes) return undefined;
    let v4: number[] | undefined;
    let v6: number[] | undefined;
    if (bytes.length === 4) {
      v4 = bytes;
      v6 = [...MAPPED_PREFIX.slice(0, 12), ...bytes];
    } else {
      v6 = bytes;
      // A mapped address is the same host as its IPv4 address: exempting 10.0.0.0/8 exempts
      // ::ffff:10.0.0.1 too (and the other way round for a v6 CIDR written in mapped form).
      if (inPrefix(bytes, MAPPED_PREFIX, 96)) v4 = bytes.slice(12);
    }
    if (v4) {
      const hit = this.v4.find((c) => inPrefix(v4, c.bytes, c.prefix));
      if (hit) return hit;
    }
    return this.v6.find((c) => inPrefix(v6, c.bytes, c.prefix));
  }

  contains(address: string): boolean {
    return this.find(address) !== undefined;
  }
}

/** SPEC §4: anything but a public address is refused unless an operator exempted its network. */
export function checkAddress(address: string, exempt: CidrSet): { blocked: boolean; class: AddressClass } {
  const cls = classifyAddress(address);
  return { blocked: cls !== 'public' && !exempt.contains(address), class: cls };
}
