// The request-target and credential parsers face whatever bytes a client sends: they never
// throw, and whatever they accept is canonical and free of the characters that make two parsers
// disagree. (The matcher's own property test, against a slow reference, is
// test/unit/domains.property.test.ts.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeHost } from '../../src/policy/domains.js';
import { parseProxyAuthorization } from '../../src/proxy/identity.js';
import { parseAbsoluteUri, parseAuthority } from '../../src/proxy/target.js';

const runs = { numRuns: 3_000 };

/** Strings built from the characters that matter to authority parsing, plus anything at all. */
const hostile = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'aZ09.-_:[]@%/\\?#\0\t\r\n \x7f\u0430\u00fc'.split(''), 'xn--', '0x', '127', '::ffff:'), maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
  fc.string({ maxLength: 300 }),
);

const canonicalHost = (host: string): boolean => normalizeHost(host) === host && /^[a-z0-9_.:-]+$/.test(host);

describe('parseAuthority', () => {
  it('never throws; what it accepts is canonical with a port in 1..65535', () => {
    fc.assert(
      fc.property(hostile, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (authority, defaultPort) => {
        const parsed = parseAuthority(authority, defaultPort);
        if (!parsed.ok) return typeof parsed.why === 'string' && parsed.why.length > 0;
        const { host, port } = parsed.target;
        return Number.isInteger(port) && port >= 1 && port <= 65535 && canonicalHost(host);
      }),
      runs,
    );
  });

  it('never accepts bytes that separate hosts for another parser', () => {
    fc.assert(
      fc.property(hostile, (authority) => {
        const parsed = parseAuthority(authority);
        return !parsed.ok || !/[\0-\x20\x7f@%/\\?#]/.test(authority);
      }),
      runs,
    );
  });

  it('is stable: formatting an accepted target and parsing it again gives the same target', () => {
    fc.assert(
      fc.property(hostile, (authority) => {
        const parsed = parseAuthority(authority, 443);
        if (!parsed.ok) return true;
        const { host, port } = parsed.target;
        const again = parseAuthority(`${host.includes(':') ? `[${host}]` : host}:${port}`);
        return again.ok && again.target.host === host && again.target.port === port;
      }),
      runs,
    );
  });
});

describe('parseAbsoluteUri', () => {
  it('never throws; what it accepts has a canonical host and a path starting with /', () => {
    fc.assert(
      fc.property(fc.oneof(hostile.map((s) => `http://${s}`), hostile.map((s) => `http://allowed.test${s}`), hostile), (uri) => {
        const parsed = parseAbsoluteUri(uri);
        if (!parsed.ok) return typeof parsed.why === 'string';
        return canonicalHost(parsed.target.host) && parsed.path.startsWith('/') && !parsed.authority.includes('@');
      }),
      runs,
    );
  });

  // Regression, found by the property above: the path was "" and the upstream got "GET  HTTP/1.1".
  it.each(['http://allowed.test#', 'http://allowed.test#frag', 'http://allowed.test?q', 'http://allowed.test'])('an empty path becomes "/": %s', (uri) => {
    const parsed = parseAbsoluteUri(uri);
    expect(parsed.ok && parsed.path.startsWith('/')).toBe(true);
  });

  it('agrees with the CONNECT form on the same authority', () => {
    fc.assert(
      fc.property(hostile, (authority) => {
        fc.pre(!/[/?#@]/.test(authority));
        const uri = parseAbsoluteUri(`http://${authority}/x`);
        const connect = parseAuthority(authority, 80);
        if (uri.ok !== connect.ok) return false;
        return !uri.ok || !connect.ok || (uri.target.host === connect.target.host && uri.target.port === connect.target.port);
      }),
      runs,
    );
  });
});

describe('parseProxyAuthorization', () => {
  const headerValues = fc.oneof(
    hostile,
    hostile.map((s) => `Basic ${s}`),
    hostile.map((s) => `Basic ${Buffer.from(s, 'latin1').toString('base64')}`),
    fc.uint8Array({ maxLength: 2_000 }).map((b) => `basic ${Buffer.from(b).toString('base64')}`),
  );

  it('never throws; accepted credentials have a non-empty id and token without control bytes', () => {
    fc.assert(
      fc.property(fc.oneof(headerValues, fc.array(headerValues, { maxLength: 3 }), fc.constant(undefined)), (header) => {
        const credentials = parseProxyAuthorization(header);
        if (credentials.kind !== 'basic') return true;
        return (
          typeof header === 'string' &&
          credentials.sessionId.length > 0 &&
          credentials.token.length > 0 &&
          !/[\x00-\x1f\x7f]/.test(credentials.sessionId + credentials.token)
        );
      }),
      runs,
    );
  });

  it('two header lines are never accepted, whatever they hold', () => {
    fc.assert(
      fc.property(fc.array(headerValues, { minLength: 2, maxLength: 4 }), (lines) => parseProxyAuthorization(lines).kind === 'malformed'),
      runs,
    );
  });

  it('round-trips every well-formed credential', () => {
    const part = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.~!$'.split('')), minLength: 1, maxLength: 64 });
    fc.assert(
      fc.property(part, part, (id, token) => {
        const credentials = parseProxyAuthorization(`Basic ${Buffer.from(`${id}:${token}`).toString('base64')}`);
        expect(credentials).toEqual({ kind: 'basic', sessionId: id, token });
      }),
      runs,
    );
  });
});
