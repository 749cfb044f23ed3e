// Where the client wants to go: the CONNECT authority or the absolute-form URI. Never the Host
// header (SPEC §4). Parsed strictly by hand: WHATWG URL would "helpfully" decode and rewrite
// hosts, and every rewrite is a place where what we check and what we dial could differ.

import { normalizeHost } from '../policy/domains.js';
import type { Target } from '../policy/types.js';

export type ParsedTarget = { ok: true; target: Target } | { ok: false; why: string };

/** `host:port`, `[v6]:port`. A port is required unless `defaultPort` is given. */
export function parseAuthority(authority: string, defaultPort?: number): ParsedTarget {
  let hostPart: string;
  let portPart: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return { ok: false, why: 'unterminated IPv6 literal' };
    hostPart = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return { ok: false, why: 'junk after IPv6 literal' };
    portPart = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = authority.lastIndexOf(':');
    hostPart = colon < 0 ? authority : authority.slice(0, colon);
    portPart = colon < 0 ? undefined : authority.slice(colon + 1);
    // An unbracketed IPv6 address would make "host" and "port" ambiguous.
    if (hostPart.includes(':')) return { ok: false, why: 'IPv6 literal must be in brackets' };
  }
  let port: number;
  if (portPart === undefined) {
    if (defaultPort === undefined) return { ok: false, why: 'a port is required' };
    port = defaultPort;
  } else {
    // Digits only: "+443", "0x1bb", " 443" and "443 " are all refused.
    if (!/^\d{1,5}$/.test(portPart)) return { ok: false, why: 'invalid port' };
    port = Number(portPart);
    if (port < 1 || port > 65535) return { ok: false, why: 'port out of range 1-65535' };
  }
  const host = normalizeHost(hostPart);
  if (host === null) return { ok: false, why: 'invalid host name' };
  return { ok: true, target: { host, port } };
}

export type ParsedUri = { ok: true; target: Target; path: string; authority: string } | { ok: false; why: string };

/** Absolute-form request target `http://authority/path?query` (RFC 9112 §3.2.2). */
export function parseAbsoluteUri(uri: string): ParsedUri {
  const scheme = /^http:\/\//i.exec(uri);
  if (!scheme) {
    return { ok: false, why: uri.startsWith('/') ? 'origin-form request: this is a proxy, send an absolute URI' : 'only http:// URIs are proxied (use CONNECT for https)' };
  }
  const rest = uri.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  // Userinfo would let "http://allowed.test@evil.test/" mean two hosts to two parsers.
  if (authority.includes('@')) return { ok: false, why: 'userinfo in URI is not allowed' };
  let path = end < 0 ? '/' : rest.slice(end);
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  // `http://host?q` and `http://host#frag` have an empty path: origin-form needs its "/" (RFC 9112 §3.2.1).
  if (!path.startsWith('/')) path = `/${path}`;
  const parsed = parseAuthority(authority, 80);
  if (!parsed.ok) return parsed;
  return { ok: true, target: parsed.target, path, authority };
}

/** The Host header must name the same authority as the URI (SPEC §4: else 421). */
export function hostHeaderMatches(hostHeader: string, target: Target): boolean {
  const parsed = parseAuthority(hostHeader, 80);
  return parsed.ok && parsed.target.host === target.host && parsed.target.port === target.port;
}

/** Authority as written in a Host header or request line, IPv6 bracketed, default port elided. */
export function formatAuthority(target: Target, defaultPort: number): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return target.port === defaultPort ? host : `${host}:${target.port}`;
}
