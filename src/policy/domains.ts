// Host names and domain patterns (SPEC §3 "Domain matching"), parsed at load time. The
// compiled matcher over a list of them is in domain-set.ts.

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
    // domainToASCII parses a URL host: it drops tabs and newlines, decodes %XX and stops at
    // `/`, `?`, `#` or `\`, so `ü/x` would come back as `xn--tda`. Only name characters may
    // stand next to the non-ASCII ones.
    if (/[^A-Za-z0-9._\-\u0080-\uffff]/.test(host)) return null;
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

const DOTTED_QUAD = /^\d+\.\d+\.\d+\.\d+$/;

/** Normalised hosts are IP literals exactly when they contain ':' or are a dotted quad. */
export function isIpLiteral(host: string): boolean {
  const last = host.charCodeAt(host.length - 1);
  return host.includes(':') || (last >= 48 && last <= 57 && DOTTED_QUAD.test(host));
}
