import { describe, it, expect } from 'vitest';
import { CidrSet } from '../../src/policy/addresses.js';
import { compileDefaults, compileEnvironment, decideTarget, type PolicyDefaults } from '../../src/policy/decide.js';
import { parseDomainPattern, type DomainPattern } from '../../src/policy/domains.js';
import type { Decision, EnvironmentPolicy } from '../../src/policy/types.js';

function patterns(...entries: string[]): DomainPattern[] {
  return entries.map((entry) => {
    const parsed = parseDomainPattern(entry);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.pattern;
  });
}

const defaults: PolicyDefaults = {
  trusted: patterns('github.com', '*.gcr.io', 'gcr.io', 'registry.npmjs.org', 'git.trusted.dev:9418'),
  alwaysAllow: patterns('api.anthropic.com', 'telemetry.example:4317'),
};
const shared = compileDefaults(defaults);

function env(overrides: Partial<EnvironmentPolicy> & Pick<EnvironmentPolicy, 'access'>): EnvironmentPolicy {
  return { id: 'web', name: 'Web', allowedDomains: [], includeDefaults: false, deniedDomains: [], archived: false, ...overrides };
}

const allow = (rule: string): Omit<Decision, 'environment'> => ({ allow: true, reason: 'allowed', rule });
const refuse = (reason: Decision['reason'], rule?: string): Omit<Decision, 'environment'> =>
  rule === undefined ? { allow: false, reason } : { allow: false, reason, rule };

type Row = [label: string, policy: EnvironmentPolicy, host: string, port: number, expected: Omit<Decision, 'environment'>, why: string];

const none = env({ access: 'none' });
const trusted = env({ access: 'trusted', deniedDomains: ['github.com'] });
const trustedPlain = env({ access: 'trusted' });
const full = env({ access: 'full', deniedDomains: ['*.evil.example', 'blocked.example:22'] });
const fullPorts = env({ access: 'full', allowedPorts: [443, 8443] });
const custom = env({
  access: 'custom',
  allowedDomains: ['api.example.com', '*.internal.example.com', 'db.example.com:5432', '1.2.3.4', '[2606:4700::1111]:443'],
  deniedDomains: ['secret.internal.example.com'],
});
const customDefaults = env({ access: 'custom', allowedDomains: ['api.example.com'], includeDefaults: true });
const customPorts = env({ access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [8080] });
const denyBeatsAlways = env({ access: 'full', deniedDomains: ['api.anthropic.com'] });

const table: Row[] = [
  // none: only alwaysAllow.
  ['none', none, 'api.anthropic.com', 443, allow('api.anthropic.com'), 'alwaysAllow is reachable under none'],
  ['none', none, 'api.anthropic.com', 80, allow('api.anthropic.com'), 'alwaysAllow allows web ports'],
  ['none', none, 'api.anthropic.com', 22, refuse('port_not_allowed', 'api.anthropic.com'), 'alwaysAllow entry, other port'],
  ['none', none, 'telemetry.example', 4317, allow('telemetry.example:4317'), 'port-scoped alwaysAllow entry'],
  ['none', none, 'github.com', 443, refuse('host_not_allowed', 'access:none'), 'trusted list is not used under none'],
  ['none', none, 'example.com', 443, refuse('host_not_allowed', 'access:none'), 'anything else'],
  ['none', none, 'x.api.anthropic.com', 443, refuse('host_not_allowed', 'access:none'), 'exact alwaysAllow entry does not cover subdomains'],

  // trusted: the default allowlist.
  ['trusted', trustedPlain, 'github.com', 443, allow('github.com'), 'in the trusted list'],
  ['trusted', trustedPlain, 'gcr.io', 443, allow('gcr.io'), 'apex entry'],
  ['trusted', trustedPlain, 'eu.gcr.io', 443, allow('*.gcr.io'), 'wildcard entry'],
  ['trusted', trustedPlain, 'github.com', 22, refuse('port_not_allowed', 'github.com'), 'web ports only by default'],
  ['trusted', trustedPlain, 'git.trusted.dev', 9418, allow('git.trusted.dev:9418'), 'port-scoped trusted entry'],
  ['trusted', trustedPlain, 'example.com', 443, refuse('host_not_allowed', 'access:trusted'), 'not in the list'],
  ['trusted', trustedPlain, 'api.anthropic.com', 443, allow('api.anthropic.com'), 'alwaysAllow at trusted'],
  ['trusted', trusted, 'github.com', 443, refuse('host_denied', 'github.com'), 'deny wins over the trusted list'],
  ['trusted', trusted, 'registry.npmjs.org', 443, allow('registry.npmjs.org'), 'other trusted entries unaffected'],

  // full: any domain.
  ['full', full, 'example.com', 443, allow('access:full'), 'any domain'],
  ['full', full, 'example.com', 5432, allow('access:full'), 'any port without allowedPorts'],
  ['full', full, 'a.evil.example', 443, refuse('host_denied', '*.evil.example'), 'deny wins at full'],
  ['full', full, 'blocked.example', 22, refuse('host_denied', 'blocked.example:22'), 'port-scoped deny, its port'],
  ['full', full, 'blocked.example', 443, allow('access:full'), 'port-scoped deny, other port'],
  ['full', fullPorts, 'example.com', 8443, allow('access:full'), 'explicit allowedPorts, listed'],
  ['full', fullPorts, 'example.com', 80, refuse('port_not_allowed', 'access:full'), 'explicit allowedPorts narrow full'],
  ['full', fullPorts, 'api.anthropic.com', 80, allow('api.anthropic.com'), 'alwaysAllow keeps 80/443 plus allowedPorts'],
  ['full', denyBeatsAlways, 'api.anthropic.com', 443, refuse('host_denied', 'api.anthropic.com'), 'deny wins over alwaysAllow'],

  // custom: allowedDomains (+ trusted with includeDefaults).
  ['custom', custom, 'api.example.com', 443, allow('api.example.com'), 'listed'],
  ['custom', custom, 'x.internal.example.com', 80, allow('*.internal.example.com'), 'wildcard'],
  ['custom', custom, 'internal.example.com', 443, refuse('host_not_allowed', 'access:custom'), '*.x never covers x'],
  ['custom', custom, 'secret.internal.example.com', 443, refuse('host_denied', 'secret.internal.example.com'), 'deny wins over a wildcard allow'],
  ['custom', custom, 'db.example.com', 5432, allow('db.example.com:5432'), 'port-scoped entry'],
  ['custom', custom, 'db.example.com', 443, refuse('port_not_allowed', 'db.example.com:5432'), 'port-scoped entry, other port'],
  ['custom', custom, 'api.example.com', 22, refuse('port_not_allowed', 'api.example.com'), 'default ports 80/443'],
  ['custom', custom, 'github.com', 443, refuse('host_not_allowed', 'access:custom'), 'trusted not included'],
  ['custom', custom, 'api.anthropic.com', 443, allow('api.anthropic.com'), 'alwaysAllow at custom'],
  ['custom', customDefaults, 'github.com', 443, allow('github.com'), 'includeDefaults adds the trusted list'],
  ['custom', customDefaults, 'api.example.com', 443, allow('api.example.com'), 'own entries still apply'],
  ['custom', customDefaults, 'example.org', 443, refuse('host_not_allowed', 'access:custom'), 'neither list'],
  ['custom', customPorts, 'api.example.com', 8080, allow('api.example.com'), 'allowedPorts replaces 80/443'],
  ['custom', customPorts, 'api.example.com', 443, refuse('port_not_allowed', 'api.example.com'), '443 no longer allowed'],
  ['custom', customPorts, 'api.anthropic.com', 8080, allow('api.anthropic.com'), 'alwaysAllow: allowedPorts too'],
  ['custom', customPorts, 'api.anthropic.com', 443, allow('api.anthropic.com'), 'alwaysAllow: 443 kept'],

  // IP literals.
  ['custom', custom, '1.2.3.4', 443, allow('1.2.3.4'), 'identical IP entry'],
  ['custom', custom, '1.2.3.5', 443, refuse('host_not_allowed', 'access:custom'), 'other IP'],
  ['custom', custom, '2606:4700::1111', 443, allow('[2606:4700::1111]:443'), 'IPv6 entry with port'],
  ['custom', custom, '2606:4700::1111', 80, refuse('port_not_allowed', '[2606:4700::1111]:443'), 'IPv6 entry, other port'],
  ['full', full, '8.8.8.8', 53, allow('access:full'), 'public IP at full'],
  ['full', full, '169.254.169.254', 80, refuse('private_address', 'link_local'), 'metadata blocked even at full'],
  ['full', full, '127.0.0.1', 3129, refuse('private_address', 'loopback'), 'admin API unreachable'],
  ['full', full, '10.0.0.1', 443, refuse('private_address', 'private'), 'RFC 1918'],
  ['full', full, '::1', 443, refuse('private_address', 'loopback'), 'IPv6 loopback'],
  ['full', full, '::ffff:a9fe:a9fe', 80, refuse('private_address', 'link_local'), 'mapped metadata'],
  ['full', full, '100.64.0.1', 443, refuse('private_address', 'cgnat'), 'CGNAT'],
  ['none', none, '10.0.0.1', 443, refuse('private_address', 'private'), 'the block names the class at every level'],

  // Malformed targets: the caller normalises; anything else is refused.
  ['full', full, 'Example.com', 443, refuse('bad_request'), 'not normalised (upper case)'],
  ['full', full, 'example.com.', 443, refuse('bad_request'), 'not normalised (trailing dot)'],
  ['full', full, 'evil.com\u0000.api.example.com', 443, refuse('bad_request'), 'NUL'],
  ['full', full, '[::1]', 443, refuse('bad_request'), 'brackets are the caller’s to strip'],
  ['full', full, '0x7f.1', 443, refuse('bad_request'), 'non-canonical IP spelling'],
  ['full', full, 'example.com', 0, refuse('bad_request'), 'port 0'],
  ['full', full, 'example.com', 70000, refuse('bad_request'), 'port out of range'],
  ['full', full, '', 443, refuse('bad_request'), 'empty host'],
];

describe('decideTarget', () => {
  it.each(table)('%s: %s:%i (%s)', (_level, policy, host, port, expected) => {
    const compiled = compileEnvironment(policy, shared);
    expect(decideTarget(compiled, { host, port })).toEqual({ ...expected, environment: policy.id });
  });

  it('exempt CIDRs lift the private-address block for IP literals', () => {
    const compiled = compileEnvironment(env({ access: 'full' }), shared);
    const exempt = new CidrSet(['10.20.0.0/16']);
    expect(decideTarget(compiled, { host: '10.20.1.1', port: 443 }, exempt)).toEqual({ allow: true, reason: 'allowed', rule: 'access:full', environment: 'web' });
    expect(decideTarget(compiled, { host: '10.21.1.1', port: 443 }, exempt)).toMatchObject({ allow: false, reason: 'private_address', rule: 'private' });
  });

  it('an exempt IP literal still needs an allow under custom', () => {
    const compiled = compileEnvironment(env({ access: 'custom', allowedDomains: ['10.20.1.1'] }), shared);
    const exempt = new CidrSet(['10.20.0.0/16']);
    expect(decideTarget(compiled, { host: '10.20.1.1', port: 443 }, exempt)).toMatchObject({ allow: true, rule: '10.20.1.1' });
    expect(decideTarget(compiled, { host: '10.20.1.2', port: 443 }, exempt)).toMatchObject({ allow: false, reason: 'host_not_allowed' });
  });

  it('a private IP in allowedDomains is still blocked without an exemption', () => {
    const compiled = compileEnvironment(env({ access: 'custom', allowedDomains: ['169.254.169.254'] }), shared);
    expect(decideTarget(compiled, { host: '169.254.169.254', port: 80 })).toMatchObject({ allow: false, reason: 'private_address' });
  });
});

describe('compileEnvironment', () => {
  it('shares one compiled Trusted set between environments', () => {
    const a = compileEnvironment(env({ id: 'a', access: 'trusted' }), shared);
    const b = compileEnvironment(env({ id: 'b', access: 'custom', includeDefaults: true }), shared);
    expect(a.defaults.trusted).toBe(b.defaults.trusted);
    expect(a.defaults).toBe(shared);
  });

  it('also accepts uncompiled defaults', () => {
    const compiled = compileEnvironment(env({ access: 'trusted' }), defaults);
    expect(decideTarget(compiled, { host: 'github.com', port: 443 })).toMatchObject({ allow: true, rule: 'github.com' });
  });

  it('exposes the source policy and counts the entries it consults', () => {
    const policy = env({ access: 'custom', allowedDomains: ['a.example', 'b.example'], deniedDomains: ['c.example'], includeDefaults: true });
    const compiled = compileEnvironment(policy, shared);
    expect(compiled.policy).toBe(policy);
    // 2 allowed + 1 denied + 2 alwaysAllow + 5 trusted
    expect(compiled.entryCount).toBe(10);
    expect(compileEnvironment(env({ access: 'none' }), shared).entryCount).toBe(2);
  });

  it('throws on an entry that skipped validation (a bug, not input)', () => {
    expect(() => compileEnvironment(env({ access: 'custom', allowedDomains: ['a.*.com'] }), shared)).toThrow(
      'environment "web": allowedDomains: "a.*.com": a wildcard is allowed only as a leading "*."',
    );
  });
});
