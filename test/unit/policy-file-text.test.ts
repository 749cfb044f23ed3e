// The environment file's bytes, built from the previous version's text, are always exactly
// what JSON.stringify(policy, null, 2) writes: whatever the edit, wherever it lands, whatever
// characters the entries hold.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PolicyFileText } from '../../src/state/policy-file-text.js';

const expected = (policy: object) => `${JSON.stringify(policy, null, 2)}\n`;
const text = (file: string | Buffer[]) => (typeof file === 'string' ? file : Buffer.concat(file).toString('utf8'));

// Plain names mostly; now and then one that JSON escapes or that UTF-8 spells in several bytes.
const entry = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 99_999 }).map((n) => `h${n}.zone${n % 97}.example.com`) },
  { weight: 1, arbitrary: fc.constantFrom('bücher.example', '*.例え.jp', 'quote"d', 'back\\slash', 'tab\there', '\ud800lone', '😀.example') },
);

type Edit = { at: number; remove: number; insert: string[] };
const edit = fc.record({ at: fc.nat(), remove: fc.nat({ max: 5 }), insert: fc.array(entry, { maxLength: 4 }) });

function applied(list: readonly string[], { at, remove, insert }: Edit): string[] {
  const next = list.slice();
  next.splice(at % (list.length + 1), remove, ...insert);
  return next;
}

const policyOf = (allowedDomains: string[], deniedDomains: string[]) => ({
  id: 'big',
  name: 'Big — "quoted"',
  access: 'custom',
  allowedDomains,
  includeDefaults: true,
  deniedDomains,
  archived: false,
  allowedPorts: [80, 443],
  rateLimit: undefined,
  content: { inspect: 'rules', rules: [{ hosts: ['a.example.com'], paths: ['/x/**'], action: 'deny' }] },
});

describe('PolicyFileText', () => {
  it('writes what JSON.stringify writes, for short lists, empty lists and an empty policy', () => {
    const fileText = new PolicyFileText();
    for (const policy of [{}, { rateLimit: undefined }, policyOf([], []), policyOf(['a.example.com'], ['b.example.com'])]) expect(text(fileText.of(policy))).toBe(expected(policy));
  });

  it('writes what JSON.stringify writes after any sequence of edits to long lists, reusing the text before', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1000, maxLength: 1300 }), fc.array(fc.tuple(edit, edit), { minLength: 1, maxLength: 6 }), (start, edits) => {
        const fileText = new PolicyFileText();
        let previous = policyOf(start, start.slice(0, 1000));
        expect(text(fileText.of(previous))).toBe(expected(previous));
        for (const [allowedEdit, deniedEdit] of edits) {
          // A PUT's lists are new arrays of new strings; a PATCH's keep the strings it did not touch.
          const next = policyOf(applied(previous.allowedDomains, allowedEdit), JSON.parse(JSON.stringify(applied(previous.deniedDomains, deniedEdit))));
          expect(text(fileText.of(next, previous))).toBe(expected(next));
          previous = next;
        }
      }),
      { numRuns: 60 },
    );
  });

  it('writes a list that fell below the length it remembers from, and one that rose above it', () => {
    const fileText = new PolicyFileText();
    const long = Array.from({ length: 1000 }, (_, i) => `h${i}.example.com`);
    const before = policyOf(long, []);
    fileText.of(before);
    const shorter = policyOf(long.slice(1), []);
    expect(text(fileText.of(shorter, before))).toBe(expected(shorter));
    const longer = policyOf([...shorter.allowedDomains, 'again.example.com'], []);
    expect(text(fileText.of(longer, shorter))).toBe(expected(longer));
  });
});
