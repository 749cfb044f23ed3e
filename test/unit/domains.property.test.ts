import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { compileDomainSet } from '../../src/policy/domain-set.js';
import { isPlainName, normalizeHost, parseDomainPattern, type DomainPattern } from '../../src/policy/domains.js';

// A small alphabet so that generated hosts and patterns collide often.
const label = fc.constantFrom('a', 'b', 'ab', 'x-y', 'com', 'org');
const host = fc.array(label, { minLength: 1, maxLength: 5 }).map((labels) => labels.join('.'));
const port = fc.constantFrom(22, 80, 443, 8443);
const entry = fc
  .tuple(fc.boolean(), fc.array(label, { minLength: 1, maxLength: 4 }), fc.option(port, { nil: undefined }))
  .filter(([wild, labels]) => !wild || labels.length >= 2) // `*.com` is refused by the parser
  .map(([wild, labels, p]) => `${wild ? '*.' : ''}${labels.join('.')}${p === undefined ? '' : `:${p}`}`);
const defaults = fc.oneof(fc.constant('any' as const), fc.constant(new Set([80, 443])), fc.constant(new Set([8443])));

/** The slow, obvious reading of SPEC §3: scan every entry, suffix match on a dot boundary. */
function referenceMatch(patterns: DomainPattern[], h: string, p: number, defaultPorts: ReadonlySet<number> | 'any') {
  const hits = patterns.filter((pt) => (pt.kind === 'wildcard' ? h.endsWith(`.${pt.host}`) : h === pt.host));
  if (hits.length === 0) return { matched: false as const };
  const allowed = hits.some((pt) => (pt.port === undefined ? defaultPorts === 'any' || defaultPorts.has(p) : pt.port === p));
  return { matched: true as const, portAllowed: allowed };
}

describe('compiled matcher agrees with a linear scan', () => {
  it('on generated hosts and patterns', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), host, port, defaults, (entries, h, p, d) => {
        const patterns = entries.map((e) => {
          const parsed = parseDomainPattern(e);
          if (!parsed.ok) throw new Error(parsed.error);
          return parsed.pattern;
        });
        const got = compileDomainSet(patterns).match(h, p, d);
        const want = referenceMatch(patterns, h, p, d);
        expect(got.matched).toBe(want.matched);
        if (got.matched && want.matched) {
          expect(got.portAllowed).toBe(want.portAllowed);
          // The reported rule is an entry that matches the host and, when allowed, allows the port.
          const reported = patterns.filter((pt) => pt.source === got.rule);
          const explains = reported.some((pt) => {
            const one = referenceMatch([pt], h, p, d);
            return one.matched && (!got.portAllowed || one.portAllowed);
          });
          expect(explains).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('normalizeHost is idempotent on whatever it accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30, unit: 'binary' }), host), (s) => {
        const once = normalizeHost(s);
        if (once !== null) expect(normalizeHost(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  // The expression isPlainName replaced: a lower-case DNS name of labels of 1-63, at most 253
  // long, whose last label has a letter other than a hex digit or `x`.
  const PLAIN_NAME = /^(?=.{1,253}$)(?:[a-z0-9_-]{1,63}\.)*(?=[a-z0-9_-]{1,63}$)[a-z0-9_-]*[g-wyz_-][a-z0-9_-]*$/;
  const nameish = fc.oneof(
    fc.string({ maxLength: 40, unit: fc.constantFrom('a', 'f', 'g', 'x', 'z', '0', '9', '_', '-', '.', 'A', ' ', ':', '*', '\u00e9') }),
    fc.array(fc.string({ minLength: 0, maxLength: 70, unit: fc.constantFrom('a', 'x', '7', '-') }), { maxLength: 6 }).map((labels) => labels.join('.')),
    fc.array(fc.constantFrom('a'.repeat(63), 'b'.repeat(64), 'c1'), { maxLength: 5 }).map((labels) => labels.join('.')),
  );

  it('isPlainName answers as the regular expression it replaced', () => {
    fc.assert(
      fc.property(nameish, (s) => {
        expect(isPlainName(s)).toBe(PLAIN_NAME.test(s));
      }),
      { numRuns: 5000 },
    );
    for (const s of ['example.com', 'a'.repeat(63) + '.com', 'b'.repeat(64) + '.com', `${'a'.repeat(61)}.`.repeat(4) + 'zz', '0x7f.1', '2130706433', 'a.b-', 'example.com.', '']) {
      expect(isPlainName(s), s).toBe(PLAIN_NAME.test(s));
    }
  });

  it('the fast path of parseDomainPattern gives what the general parse gives', () => {
    // The general parse of an entry is reached with a port: strip it back off and compare.
    // Only names the fast path takes (anything else goes the general way with or without a port).
    fc.assert(
      fc.property(fc.boolean(), nameish.filter(isPlainName), (wild, name) => {
        const entry = `${wild ? '*.' : ''}${name}`;
        const fast = parseDomainPattern(entry);
        const general = parseDomainPattern(`${entry}:443`);
        expect(fast.ok).toBe(general.ok);
        if (fast.ok && general.ok) expect({ ...general.pattern, port: undefined, source: entry }).toEqual({ ...fast.pattern, port: undefined });
      }),
      { numRuns: 5000 },
    );
  });
});
