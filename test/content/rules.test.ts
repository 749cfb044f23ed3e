// Method and path rules (SPEC §3 content.rules), inspection choice and path canonicalisation:
// tables of request, expected decision, and why.

import { describe, expect, it } from 'vitest';
import { canonicalPath, compileContent, decideRequest, shouldInspect } from '../../src/policy/content.js';
import { validateEnvironment } from '../../src/policy/environment.js';
import type { ContentPolicy } from '../../src/policy/types.js';

function compiled(content: unknown) {
  const result = validateEnvironment({ id: 't', access: 'full', content });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return compileContent(result.value.content as ContentPolicy, 't');
}

const registry = compiled({
  inspect: 'rules',
  inspectExclude: ['pinned.example.com'],
  methods: ['GET', 'HEAD', 'OPTIONS'],
  rules: [
    { hosts: ['registry.npmjs.org'], methods: ['PUT', 'DELETE'], paths: ['/**'], action: 'deny' },
    { hosts: ['api.example.com'], paths: ['/v1/public/**'], action: 'allow' },
    { hosts: ['api.example.com'], action: 'deny' },
    { hosts: ['*.uploads.example.com'], methods: ['POST'], action: 'allow' },
    { hosts: ['ports.example.com:8443'], action: 'deny' },
  ],
});

// [host, port, method, path, allow, rule, why]
const table: [string, number, string, string, boolean, string | undefined, string][] = [
  ['registry.npmjs.org', 443, 'GET', '/left-pad', true, 'content.methods', 'installing is a GET: the fallback allows it'],
  ['registry.npmjs.org', 443, 'PUT', '/left-pad', false, 'content.rules[0]', 'publishing is refused'],
  ['registry.npmjs.org', 443, 'put', '/left-pad', false, 'content.rules[0]', 'methods compare case-insensitively'],
  ['registry.npmjs.org', 443, 'DELETE', '/-/user/token/x', false, 'content.rules[0]', 'unpublishing too'],
  ['registry.npmjs.org', 443, 'PUT', '/.well-known/x', false, 'content.rules[0]', '/** covers dot segments (dot: true)'],
  ['registry.npmjs.org', 443, 'POST', '/x', false, 'content.methods', 'no rule for POST, not in content.methods'],
  ['api.example.com', 443, 'GET', '/v1/public/a/b', true, 'content.rules[1]', 'inside the allowed glob'],
  ['api.example.com', 443, 'GET', '/v1/public/a?token=1', true, 'content.rules[1]', 'the query is not part of the path'],
  ['api.example.com', 443, 'GET', '/v1/private/a', false, 'content.rules[2]', 'outside the glob: the catch-all deny'],
  ['api.example.com', 443, 'GET', '/v1/public/../private/a', false, 'content.rules[2]', 'dot segments are resolved before matching'],
  ['api.example.com', 443, 'GET', '/v1/%70rivate/a', false, 'content.rules[2]', 'encoded unreserved characters are decoded'],
  ['api.example.com', 443, 'GET', '/v1/public/%2e%2e/private', false, 'content.rules[2]', 'encoded dot segments too'],
  ['api.example.com', 443, 'GET', '/v1/%70ublic/x', true, 'content.rules[1]', 'and decoding cuts both ways'],
  ['a.uploads.example.com', 443, 'POST', '/file', true, 'content.rules[3]', 'a rule may allow beyond content.methods'],
  ['uploads.example.com', 443, 'POST', '/file', false, 'content.methods', '*. does not cover the apex'],
  ['ports.example.com', 8443, 'GET', '/', false, 'content.rules[4]', 'a rule host with a port matches that port'],
  ['ports.example.com', 443, 'GET', '/', true, 'content.methods', 'and only that port'],
  ['other.example.com', 443, 'GET', '/', true, 'content.methods', 'no rule names it'],
];

describe('decideRequest', () => {
  it.each(table)('%s:%s %s %s → allow=%s by %s (%s)', (host, port, method, path, allow, rule) => {
    const decision = decideRequest(registry, 't', { host, port, method, path });
    expect(decision).toEqual(allow ? { allow, reason: 'allowed', rule, environment: 't' } : { allow, reason: 'content_filtered', rule, environment: 't' });
  });

  it('allows everything when no content policy is set, and scans secrets by default', () => {
    const none = compileContent(undefined);
    expect(decideRequest(none, 't', { host: 'x.com', port: 443, method: 'DELETE', path: '/' })).toEqual({ allow: true, reason: 'allowed', environment: 't' });
    expect(none.secrets).toBe('block');
    expect(none.inspect).toBe('off');
  });

  it('refuses a target that is not origin-form', () => {
    expect(decideRequest(registry, 't', { host: 'x.com', port: 443, method: 'GET', path: 'http://evil/' }).reason).toBe('bad_request');
  });
});

describe('shouldInspect', () => {
  const all = compiled({ inspect: 'all', inspectExclude: ['pinned.example.com', '*.mtls.example.com'] });
  const off = compiled({ inspect: 'off', rules: [{ hosts: ['registry.npmjs.org'], action: 'deny' }] });
  // [policy, host, port, expected, why]
  const cases: [string, ReturnType<typeof compiled>, string, number, boolean][] = [
    ['rules: a rule host', registry, 'registry.npmjs.org', 443, true],
    ['rules: a wildcard rule host', registry, 'a.uploads.example.com', 443, true],
    ['rules: a host no rule names', registry, 'pypi.org', 443, false],
    ['rules: a rule host on another port', registry, 'ports.example.com', 443, false],
    ['all: any host', all, 'pypi.org', 443, true],
    ['all: an excluded host', all, 'pinned.example.com', 443, false],
    ['all: an excluded wildcard', all, 'a.mtls.example.com', 443, false],
    ['off: even a rule host', off, 'registry.npmjs.org', 443, false],
  ];
  it.each(cases)('%s', (_why, policy, host, port, expected) => {
    expect(shouldInspect(policy, host, port)).toBe(expected);
  });
});

describe('canonicalPath', () => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['/a/b?x=1#f', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/../../etc', '/etc'],
    ['/%41%2f%2Fb', '/A%2F%2Fb'],
    ['/a%20b', '/a%20b'],
    ['/a//b', '/a/b'],
    ['//admin/x', '/admin/x'],
    ['/a/', '/a/'],
  ];
  it.each(cases)('%s → %s', (input, expected) => {
    expect(canonicalPath(input)).toBe(expected);
  });
});
