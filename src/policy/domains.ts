// Host names and domain patterns (SPEC §3 "Domain matching"): parsing at load time, and a
// compiled matcher whose lookup cost depends on the host's label count, not on the list size.

import { domainToASCII } from 'node:url';
import { canonicalIp } from './addresses.js';

export interface DomainPattern {
  kind: 'exact' | 'wildcard' | 'ip';
  /** Normalised host; for a wildcard, the suffix after `*.`; for an IP, its canonical form. */
  host: string;
  port?: number;
  /** The entry as the operator wrote it: what decisions report as `rule`. */
  source: string;
}

export type DomainMatch = { matched: false } | { matched: true; portAllowed: boolean; rule: string };

export type ParsedPattern = { ok: true; pattern: DomainPattern } | { ok: false; error: string };

/** A label that the WHATWG URL parser would read as an IPv4 number (`123`, `0x1f`). */
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/;

/**
 * The one spelling of a host that policy compares: lower case, no trailing dot, punycode,
 * IP literals canonical (IPv6 without brackets). Null when the host is not a valid name.
 *
 * Rejecting rather than cleaning is deliberate: `evil.com\x00.allowed.com`, `a b`, `x%2e`,
 * `user@host` or `host/path` mean different hosts to different parsers, and the only safe
 * answer to a host we cannot read one way is no.
 */
/**
 * A lower-case ASCII DNS name, labels of 1-63 of [a-z0-9_-], at most 253 long, whose last label
 * has a letter other than a hex digit or `x`: it cannot be an inet_aton spelling (`0x7f.1`,
 * `2130706433`) nor end in a numeric label, so normalisation would return it unchanged. Checked
 * first because the full normalisation (IDN, IP parsing) costs microseconds; a loop rather than
 * a regular expression because it runs for every request and every allowlist entry (the
 * expression it replaces is in the unit tests, which hold the two to the same answers).
 */
export function isPlainName(s: string): boolean {
  const length = s.length;
  if (length === 0 || length > 253) return false;
  let labelLength = 0;
  let lastLabelHasLetter = false;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (labelLength === 0) return false;
      labelLength = 0;
      lastLabelHasLetter = false;
      continue;
    }
    if (c >= 97 /* a */ && c <= 122 /* z */) {
      if (c >= 103 /* g */ && c !== 120 /* x */) lastLabelHasLetter = true;
    } else if (c === 95 /* _ */ || c === 45 /* - */) {
      lastLabelHasLetter = true;
    } else if (c < 48 /* 0 */ || c > 57 /* 9 */) {
      return false;
    }
    if (++labelLength > 63) return false;
  }
  return lastLabelHasLetter;
}

export function normalizeHost(raw: string): string | null {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 1024) return null;
  // The common case, on every request and for every allowlist entry: already normal.
  if (isPlainName(raw)) return raw;

  if (raw.startsWith('[') || raw.includes(':')) {
    // Only IPv6 has colons or brackets; a port must have been split off by the caller.
    const ip = canonicalIp(raw);
    return ip?.family === 6 ? ip.address : null;
  }

  let host = raw;
  // Internationalised names compare in their ASCII form (UTS #46, as browsers and curl do),
  // so `bücher.example` and `xn--bcher-kva.example` are one host.
  if (/[^\x00-\x7f]/.test(host)) {
    host = domainToASCII(host);
    if (host === '') return null;
  }
  host = host.toLowerCase();
  // One trailing dot is the root label (`example.com.` is `example.com`); a second is an empty label.
  if (host.endsWith('.')) host = host.slice(0, -1);
  // `_` appears in real DNS names (service records, some CDNs); everything else is refused.
  if (!/^[a-z0-9_.-]+$/.test(host)) return null;

  // inet_aton spellings (`0x7f.1`, `2130706433`) are IP addresses to the resolver: compare them as such.
  const ip = canonicalIp(host);
  if (ip) return ip.address;

  const labels = host.split('.');
  if (host.length > 253 || labels.some((label) => label.length === 0 || label.length > 63)) return null;
  // `1.2.3.4.5` or `example.123`: a URL parser fails on these, a resolver may read them as an
  // address. No real top-level domain is numeric (RFC 3696 §2), so refuse the ambiguity.
  if (NUMERIC_LABEL.test(labels[labels.length - 1] as string)) return null;
  return host;
}

const fail = (entry: string, why: string): ParsedPattern => ({ ok: false, error: `${JSON.stringify(entry)}: ${why}` });

/**
 * An allowlist or denylist entry: `example.com`, `*.example.com`, an IP, each with an optional
 * `:port` (IPv6 with a port in brackets: `[2001:db8::1]:443`).
 */
export function parseDomainPattern(entry: string): ParsedPattern {
  if (typeof entry !== 'string') return { ok: false, error: `expected a string, got ${JSON.stringify(entry) ?? typeof entry}` };
  // The common entries, `example.com` and `*.example.com` already in normal form, without the
  // general parse below: a 100 000-entry list is validated on every PUT.
  if (isPlainName(entry)) return { ok: true, pattern: { kind: 'exact', host: entry, source: entry } };
  if (entry.charCodeAt(0) === 42 /* * */ && entry.charCodeAt(1) === 46 /* . */) {
    const suffix = entry.slice(2);
    if (isPlainName(suffix) && suffix.includes('.')) return { ok: true, pattern: { kind: 'wildcard', host: suffix, source: entry } };
  }
  if (entry === '') return fail(entry, 'an entry must not be empty');
  if (/\s/.test(entry)) return fail(entry, 'an entry must not contain spaces');

  let hostText = entry;
  let portText: string | undefined;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) return fail(entry, 'missing "]" after an IPv6 address');
    hostText = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return fail(entry, 'expected ":port" after "]"');
      portText = rest.slice(1);
    }
    if (!hostText.includes(':')) return fail(entry, 'brackets are only for IPv6 addresses');
  } else {
    const colons = entry.split(':').length - 1;
    if (colons === 1) [hostText, portText] = entry.split(':') as [string, string];
    // Two or more colons: a bare IPv6 address, which cannot carry a port without brackets.
  }

  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return fail(entry, 'the port must be a number from 1 to 65535');
    }
    port = Number(portText);
  }
  const withPort = (p: Omit<DomainPattern, 'port' | 'source'>): ParsedPattern => ({
    ok: true,
    pattern: port === undefined ? { ...p, source: entry } : { ...p, port, source: entry },
  });

  if (hostText.includes('*')) {
    if (hostText === '*') return fail(entry, 'a bare "*" is not allowed; use access "full" to allow every domain');
    if (!hostText.startsWith('*.') || hostText.indexOf('*', 1) >= 0) {
      return fail(entry, 'a wildcard is allowed only as a leading "*."');
    }
    const suffixText = hostText.slice(2);
    if (suffixText.includes(':') || canonicalIp(suffixText.replace(/\.$/, ''))) {
      return fail(entry, 'a wildcard cannot cover an IP address');
    }
    const suffix = normalizeHost(suffixText);
    if (suffix === null) return fail(entry, `${JSON.stringify(suffixText)} is not a valid domain name`);
    if (!suffix.includes('.')) {
      return fail(entry, `a wildcard over the top-level domain "${suffix}" is not allowed; name a domain under it`);
    }
    return withPort({ kind: 'wildcard', host: suffix });
  }

  const host = normalizeHost(hostText);
  if (host === null) {
    return fail(entry, hostText.includes(':') ? 'not a valid IPv6 address' : 'not a valid domain name or IP address');
  }
  return withPort({ kind: !isPlainName(host) && canonicalIp(host) ? 'ip' : 'exact', host });
}

/**
 * Entries of one host (or one wildcard suffix), arranged for the port check. Most hosts have
 * one entry without a port: that bucket is just the entry (an object each was most of a big
 * list's compile time and garbage).
 */
type Bucket = string | PortedBucket;

interface PortedBucket {
  /** The first entry without a port: allows the caller's default ports. */
  portless?: string;
  /** Port-scoped entries: port -> rule. */
  ports: Map<number, string>;
  /** The first entry seen, reported when the host matched but no entry allowed the port. */
  first: string;
}

export interface DomainSet {
  /** Number of entries compiled in. */
  readonly size: number;
  /**
   * Does `host` (already normalised) match an entry, and does a matching entry allow `port`?
   * `defaultPorts` are the ports an entry without a port allows ('any' = every port).
   */
  match(host: string, port: number, defaultPorts: ReadonlySet<number> | 'any'): DomainMatch;
}

const NO_MATCH: DomainMatch = Object.freeze({ matched: false });

function addTo(map: Map<string, Bucket>, pattern: DomainPattern): void {
  const bucket = map.get(pattern.host);
  if (pattern.port === undefined) {
    if (bucket === undefined) map.set(pattern.host, pattern.source);
    else if (typeof bucket !== 'string') bucket.portless ??= pattern.source;
    return;
  }
  if (bucket === undefined || typeof bucket === 'string') {
    const ported: PortedBucket = { ports: new Map([[pattern.port, pattern.source]]), first: bucket ?? pattern.source };
    if (bucket !== undefined) ported.portless = bucket;
    map.set(pattern.host, ported);
  } else if (!bucket.ports.has(pattern.port)) {
    bucket.ports.set(pattern.port, pattern.source);
  }
}

/** The entry a bucket reports when the host matched but no entry allowed the port. */
const firstOf = (bucket: Bucket): string => (typeof bucket === 'string' ? bucket : bucket.first);

/** The rule of `bucket` that allows `port`, if any. */
function allowing(bucket: Bucket, port: number, defaultPorts: ReadonlySet<number> | 'any'): string | undefined {
  let portless: string | undefined;
  if (typeof bucket === 'string') {
    portless = bucket;
  } else {
    const scoped = bucket.ports.get(port);
    if (scoped !== undefined) return scoped;
    portless = bucket.portless;
  }
  return portless !== undefined && (defaultPorts === 'any' || defaultPorts.has(port)) ? portless : undefined;
}

const DOTTED_QUAD = /^\d+\.\d+\.\d+\.\d+$/;

/** Normalised hosts are IP literals exactly when they contain ':' or are a dotted quad. */
export function isIpLiteral(host: string): boolean {
  const last = host.charCodeAt(host.length - 1);
  return host.includes(':') || (last >= 48 && last <= 57 && DOTTED_QUAD.test(host));
}

const labelCount = (host: string): number => {
  let labels = 1;
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) labels += 1;
  return labels;
};

/**
 * Compile entries into hash maps. A lookup costs one probe for the exact host and one per
 * suffix of it (`a.b.example.com` probes `b.example.com`, `example.com`, `com` for wildcards),
 * so a 10-entry list and a 10,000-entry list answer in the same time. Suffixes with a label
 * count no wildcard has are not probed: in a big list each probe is a cache miss.
 */
export function compileDomainSet(patterns: readonly DomainPattern[]): DomainSet {
  const exact = new Map<string, Bucket>();
  const wildcard = new Map<string, Bucket>();
  const ips = new Map<string, Bucket>();
  // wildcardDepths[n]: some wildcard suffix has n labels (a name has at most 127).
  const wildcardDepths = new Uint8Array(128);
  for (const pattern of patterns) {
    if (pattern.kind === 'wildcard') wildcardDepths[Math.min(127, labelCount(pattern.host))] = 1;
    addTo(pattern.kind === 'exact' ? exact : pattern.kind === 'wildcard' ? wildcard : ips, pattern);
  }

  return {
    size: patterns.length,
    match(host, port, defaultPorts) {
      // An IP literal only ever matches the same IP entry: `*.3.4` must not cover 1.2.3.4, and
      // a domain entry says nothing about whatever address a client typed.
      if (isIpLiteral(host)) {
        const bucket = ips.get(host);
        if (!bucket) return NO_MATCH;
        const rule = allowing(bucket, port, defaultPorts);
        return rule !== undefined ? { matched: true, portAllowed: true, rule } : { matched: true, portAllowed: false, rule: firstOf(bucket) };
      }

      // Most specific first: the exact host, then wildcards from the longest suffix down. The
      // first entry that allows the port decides; if none does, report the most specific match.
      let refused: string | undefined;
      const exactBucket = exact.size > 0 ? exact.get(host) : undefined;
      if (exactBucket) {
        const rule = allowing(exactBucket, port, defaultPorts);
        if (rule !== undefined) return { matched: true, portAllowed: true, rule };
        refused = firstOf(exactBucket);
      }
      if (wildcard.size > 0) {
        // Strict suffixes only: `*.example.com` never matches `example.com` itself.
        let depth = labelCount(host) - 1;
        for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1), depth -= 1) {
          if (wildcardDepths[Math.min(127, depth)] === 0) continue;
          const bucket = wildcard.get(host.slice(dot + 1));
          if (!bucket) continue;
          const rule = allowing(bucket, port, defaultPorts);
          if (rule !== undefined) return { matched: true, portAllowed: true, rule };
          refused ??= firstOf(bucket);
        }
      }
      if (refused !== undefined) return { matched: true, portAllowed: false, rule: refused };
      return NO_MATCH;
    },
  };
}
