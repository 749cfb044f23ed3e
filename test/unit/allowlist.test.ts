import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseAllowlist } from '../../src/policy/allowlist.js';

const root = new URL('../../', import.meta.url);
const reference = readFileSync('/work/shared/reference/default-allowlist.txt', 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const yamlText = readFileSync(new URL('allowlists/default.yaml', root), 'utf8');

describe('allowlists/default.yaml', () => {
  const result = parseAllowlist(parseYaml(yamlText));

  it('parses without errors', () => {
    expect(result).toMatchObject({ ok: true });
  });

  it('holds exactly the entries of the reference list, in order', () => {
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.patterns.map((p) => p.source)).toEqual(reference);
    expect(reference.length).toBeGreaterThan(150);
  });

  it.each(['*.gcr.io', 'gcr.io', 'registry.npmjs.org', 'pypi.org', 'api.anthropic.com', 'github.com'])('contains %s', (entry) => {
    if (!result.ok) throw new Error('invalid');
    expect(result.patterns.map((p) => p.source)).toContain(entry);
  });

  it('keeps the group names as comments', () => {
    const groups = readFileSync('/work/shared/reference/default-allowlist.txt', 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('## '))
      .map((line) => `  # ${line.slice(3)}`);
    const yamlLines = yamlText.split('\n');
    for (const group of groups) expect(yamlLines).toContain(group);
  });
});

describe('parseAllowlist', () => {
  const table: [doc: unknown, expected: ReturnType<typeof parseAllowlist>, why: string][] = [
    [{ domains: [] }, { ok: true, patterns: [] }, 'empty list is valid'],
    [
      { domains: ['a.example', '*.b.example:8443'] },
      { ok: true, patterns: [{ kind: 'exact', host: 'a.example', source: 'a.example' }, { kind: 'wildcard', host: 'b.example', port: 8443, source: '*.b.example:8443' }] },
      'entries parsed',
    ],
    [null, { ok: false, errors: [{ path: '(top level)', message: 'expected a mapping with a "domains" list, got null' }] }, 'empty file'],
    [{}, { ok: false, errors: [{ path: 'domains', message: 'expected a list of domain patterns, got nothing' }] }, 'missing domains'],
    [
      { domains: ['ok.example', 'a.*.com', 42, null], extra: 1 },
      {
        ok: false,
        errors: [
          { path: 'extra', message: 'unknown key (expected: domains)' },
          { path: 'domains[1]', message: '"a.*.com": a wildcard is allowed only as a leading "*."' },
          { path: 'domains[2]', message: 'expected a domain pattern string, got 42' },
          { path: 'domains[3]', message: 'expected a domain pattern string, got null' },
        ],
      },
      'every error with its path',
    ],
  ];
  it.each(table)('%j (%s)', (doc, expected) => {
    expect(parseAllowlist(doc)).toEqual(expected);
  });

  it('an unquoted "- *.gcr.io" in YAML does not sneak through', () => {
    // `*` starts a YAML alias: the parser fails, or yields something that is not the string.
    let doc: unknown;
    try {
      doc = parseYaml('domains:\n  - *.gcr.io\n');
    } catch {
      return;
    }
    expect(parseAllowlist(doc).ok).toBe(false);
  });
});
