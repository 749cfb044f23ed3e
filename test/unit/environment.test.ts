import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parseDomainPattern } from '../../src/policy/domains.js';
import { validateEnvironment } from '../../src/policy/environment.js';
import { recallParsed } from '../../src/policy/parsed-patterns.js';

describe('validateEnvironment: valid objects', () => {
  it('fills defaults for a minimal object', () => {
    expect(validateEnvironment({ id: 'web-app', access: 'trusted' })).toEqual({
      ok: true,
      value: { id: 'web-app', name: 'web-app', access: 'trusted', allowedDomains: [], includeDefaults: false, deniedDomains: [], archived: false },
    });
  });

  it('normalises a complete object (methods upper-cased, optional blocks kept)', () => {
    const result = validateEnvironment({
      id: 'web_1',
      name: 'Web app',
      access: 'custom',
      allowedDomains: ['api.example.com', '*.internal.example.com', 'db.example.com:5432'],
      includeDefaults: true,
      deniedDomains: ['evil.example.com'],
      archived: true,
      allowedPorts: [80, 443, 8443],
      rateLimit: { requestsPerSecond: 2.5, burst: 40, maxConnections: 100 },
      content: {
        inspect: 'rules',
        inspectExclude: ['pinned.example.com'],
        methods: ['get', 'HEAD', 'Options'],
        rules: [{ hosts: ['registry.npmjs.org'], methods: ['put', 'DELETE'], paths: ['/**'], action: 'deny' }],
        maxRequestBodyBytes: 0,
        secrets: 'block',
      },
    });
    expect(result).toEqual({
      ok: true,
      value: {
        id: 'web_1',
        name: 'Web app',
        access: 'custom',
        allowedDomains: ['api.example.com', '*.internal.example.com', 'db.example.com:5432'],
        includeDefaults: true,
        deniedDomains: ['evil.example.com'],
        archived: true,
        allowedPorts: [80, 443, 8443],
        rateLimit: { requestsPerSecond: 2.5, burst: 40, maxConnections: 100 },
        content: {
          inspect: 'rules',
          inspectExclude: ['pinned.example.com'],
          methods: ['GET', 'HEAD', 'OPTIONS'],
          rules: [{ hosts: ['registry.npmjs.org'], methods: ['PUT', 'DELETE'], paths: ['/**'], action: 'deny' }],
          maxRequestBodyBytes: 0,
          secrets: 'block',
        },
      },
    });
  });

  const idTable: [raw: Record<string, unknown>, idFromFile: string | undefined, expectedId: string | null, why: string][] = [
    [{ access: 'none' }, 'from-file', 'from-file', 'id taken from the file name'],
    [{ id: 'same', access: 'none' }, 'same', 'same', 'file name and id agree'],
    [{ id: 'a', access: 'none' }, 'b', null, 'file name and id disagree'],
    [{ access: 'none' }, undefined, null, 'no id anywhere'],
    [{ access: 'none' }, 'Bad Name', null, 'file name is not a valid id'],
    [{ id: 'x'.repeat(64), access: 'none' }, undefined, 'x'.repeat(64), '64 characters is the maximum'],
    [{ id: 'x'.repeat(65), access: 'none' }, undefined, null, 'over 64'],
    [{ id: 'Web', access: 'none' }, undefined, null, 'upper case'],
    [{ id: '', access: 'none' }, undefined, null, 'empty'],
    [{ id: '../etc', access: 'none' }, undefined, null, 'path traversal through the id'],
  ];
  it.each(idTable)('%j with file id %j -> %j (%s)', (raw, idFromFile, expectedId) => {
    const result = validateEnvironment(raw, idFromFile);
    if (expectedId === null) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.errors.map((e) => e.path)).toEqual(['id']);
    } else {
      expect(result).toMatchObject({ ok: true, value: { id: expectedId } });
    }
  });
});

describe('validateEnvironment: invalid objects', () => {
  it('returns every error with its path', () => {
    const result = validateEnvironment({
      id: 'Bad Id',
      name: 42,
      access: 'everything',
      allowedDomains: ['ok.example.com', 'a.*.com', '*.com', 7],
      deniedDomains: 'evil.com',
      includeDefaults: 'yes',
      archived: 1,
      allowedPorts: [443, 0, 70000, 8.5],
      rateLimit: { requestsPerSecond: 0, burst: 0.5, maxConnections: -1, extra: true },
      content: {
        inspect: 'some',
        inspectExclude: ['*example.com'],
        methods: ['GET', 'NOT A METHOD'],
        rules: [
          { hosts: [], methods: [], paths: ['/ok/**', '/a/[b', 'relative/**'], action: 'maybe' },
          { methods: ['GET'] },
          'not-a-rule',
        ],
        maxRequestBodyBytes: -1,
        secrets: 'yes',
        colour: 'blue',
      },
      surprise: true,
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      { path: 'surprise', message: expect.stringContaining('unknown key') },
      { path: 'id', message: 'expected 1-64 characters of a-z, 0-9, "_" and "-", got "Bad Id"' },
      { path: 'name', message: 'expected a non-empty string, got 42' },
      { path: 'access', message: 'expected one of none, trusted, full, custom, got "everything"' },
      { path: 'allowedDomains[1]', message: '"a.*.com": a wildcard is allowed only as a leading "*."' },
      { path: 'allowedDomains[2]', message: '"*.com": a wildcard over the top-level domain "com" is not allowed; name a domain under it' },
      { path: 'allowedDomains[3]', message: 'expected a domain pattern string, got 7' },
      { path: 'deniedDomains', message: 'expected a list, got "evil.com"' },
      { path: 'includeDefaults', message: 'expected true or false, got "yes"' },
      { path: 'archived', message: 'expected true or false, got 1' },
      { path: 'allowedPorts[1]', message: 'expected an integer from 1 to 65535, got 0' },
      { path: 'allowedPorts[2]', message: 'expected an integer from 1 to 65535, got 70000' },
      { path: 'allowedPorts[3]', message: 'expected an integer from 1 to 65535, got 8.5' },
      { path: 'rateLimit.extra', message: expect.stringContaining('unknown key') },
      { path: 'rateLimit.requestsPerSecond', message: 'expected a number > 0, got 0' },
      { path: 'rateLimit.burst', message: 'expected an integer >= 1, got 0.5' },
      { path: 'rateLimit.maxConnections', message: 'expected an integer >= 1, got -1' },
      { path: 'content.colour', message: expect.stringContaining('unknown key') },
      { path: 'content.inspect', message: 'expected one of off, rules, all, got "some"' },
      { path: 'content.inspectExclude[0]', message: '"*example.com": a wildcard is allowed only as a leading "*."' },
      { path: 'content.methods[1]', message: 'expected an HTTP method such as "GET", got "NOT A METHOD"' },
      { path: 'content.rules[0].hosts', message: 'must not be empty' },
      { path: 'content.rules[0].methods', message: 'must not be empty' },
      { path: 'content.rules[0].paths[1]', message: expect.stringMatching(/^"\/a\/\[b": Missing closing/) },
      { path: 'content.rules[0].paths[2]', message: '"relative/**": a path glob must start with "/" (or "*")' },
      { path: 'content.rules[0].action', message: 'expected one of allow, deny, got "maybe"' },
      { path: 'content.rules[1].hosts', message: 'required: the hosts this rule applies to' },
      { path: 'content.rules[1].action', message: 'required: allow or deny' },
      { path: 'content.rules[2]', message: 'expected a mapping, got "not-a-rule"' },
      { path: 'content.maxRequestBodyBytes', message: 'expected an integer >= 0, got -1' },
      { path: 'content.secrets', message: 'expected one of block, log, off, got "yes"' },
    ]);
  });

  const table: [raw: unknown, errors: { path: string; message: string }[], why: string][] = [
    [null, [{ path: '(top level)', message: 'expected a mapping, got null' }], 'null document (empty YAML file)'],
    [['id'], [{ path: '(top level)', message: 'expected a mapping, got a list' }], 'a list'],
    [{ id: 'x' }, [{ path: 'access', message: 'required: one of none, trusted, full, custom' }], 'access is required'],
    [{ id: 'x', access: 'custom', allowedPorts: [] }, [{ path: 'allowedPorts', message: 'must not be empty' }], 'an empty port list locks everything out'],
    [{ id: 'x', access: 'custom', rateLimit: [] }, [{ path: 'rateLimit', message: 'expected a mapping, got a list' }], 'rateLimit shape'],
    [{ id: 'x', access: 'custom', content: { rules: [{ hosts: ['a.com'], paths: [''], action: 'deny' }] } },
      [{ path: 'content.rules[0].paths[0]', message: 'expected a non-empty path glob such as "/api/**", got ""' }], 'empty glob'],
    [{ id: 'x', access: 'custom', name: '' }, [{ path: 'name', message: 'expected a non-empty string, got ""' }], 'empty name'],
    [{ id: 'x', access: 'custom', rateLimit: { requestsPerSecond: Infinity } },
      [{ path: 'rateLimit.requestsPerSecond', message: 'expected a number > 0, got Infinity' }], 'Infinity is not a rate'],
  ];
  it.each(table)('%j (%s)', (raw, errors) => {
    expect(validateEnvironment(raw)).toEqual({ ok: false, errors });
  });
});

describe('validateEnvironment with the version it replaces', () => {
  // Valid and invalid entries, repeated so that edits keep long shared runs.
  const entry = fc.constantFrom('a.example.com', '*.b.example.com', 'c.example.com:8443', '10.0.0.1', '[2001:db8::1]:443', 'BÜCHER.example', 'bad entry', '*.com', 7 as unknown as string);
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: entry }),
    fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: entry }),
  );

  it('gives the same answer as validating from scratch, after any edits', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), fc.array(edit, { maxLength: 4 }), (before, edits) => {
        const previous = validateEnvironment({ id: 'e', access: 'custom', allowedDomains: before.filter((e) => typeof e === 'string' && parseDomainPattern(e).ok) });
        if (!previous.ok) throw new Error('the valid subset must validate');
        const after = [...previous.value.allowedDomains] as unknown[];
        for (const e of edits) {
          const at = after.length === 0 ? 0 : e.at % (after.length + (e.kind === 'insert' ? 1 : 0));
          if (e.kind === 'insert') after.splice(at, 0, e.value);
          else if (e.kind === 'remove') after.splice(at, 1);
          else after.splice(at, 1, e.value);
        }
        const raw = { id: 'e', access: 'custom', allowedDomains: after };
        const fresh = validateEnvironment(raw);
        const reused = validateEnvironment(raw, undefined, previous.value);
        expect(reused).toEqual(fresh);
        if (fresh.ok && reused.ok) expect(recallParsed(reused.value.allowedDomains)).toEqual(recallParsed(fresh.value.allowedDomains));
      }),
      { numRuns: 1000 },
    );
  });

  it('parses only the edited entry of a long list, keeping the parsed entries of the rest', () => {
    const list = Array.from({ length: 1000 }, (_, i) => `h${i}.example.com`);
    const previous = validateEnvironment({ id: 'e', access: 'custom', allowedDomains: list });
    if (!previous.ok) throw new Error('valid');
    const edited = [...list.slice(0, 500), 'inserted.example.com', ...list.slice(501)];
    const next = validateEnvironment({ id: 'e', access: 'custom', allowedDomains: edited }, undefined, previous.value);
    if (!next.ok) throw new Error('valid');
    const before = recallParsed(previous.value.allowedDomains) ?? [];
    const after = recallParsed(next.value.allowedDomains) ?? [];
    // The same objects, not equal copies: taken over, not parsed again.
    expect(after[0]).toBe(before[0]);
    expect(after[499]).toBe(before[499]);
    expect(after[501]).toBe(before[501]);
    expect(after[999]).toBe(before[999]);
    expect(after[500]).toEqual({ kind: 'exact', host: 'inserted.example.com', source: 'inserted.example.com' });
  });
});
