// The decision for one destination (SPEC §3, §4): compile an environment once, then answer
// each CONNECT or absolute-form request with lookups only. Pure: no DNS, no sockets.

import { checkAddress, CidrSet } from './addresses.js';
import { compileContent, type CompiledContent } from './content.js';
import { compileDomainSet, editDomainSet, type CompiledDomainSet, type DomainMatch, type DomainSet } from './domain-set.js';
import { isIpLiteral, normalizeHost, parseDomainPattern, type DomainPattern } from './domains.js';
import { recallParsed, takeEdit } from './parsed-patterns.js';
import type { Decision, EnvironmentPolicy, Target } from './types.js';

/** The lists every environment shares: the Trusted allowlist and `defaults.alwaysAllow`. */
export interface PolicyDefaults {
  trusted: DomainPattern[];
  alwaysAllow: DomainPattern[];
}

const COMPILED = Symbol('compiled defaults');

/** Compiled once per config load and shared by every environment (1000 environments, one Trusted map). */
export interface CompiledDefaults {
  readonly [COMPILED]: true;
  readonly source: PolicyDefaults;
  readonly trusted: DomainSet;
  readonly alwaysAllow: DomainSet;
}

export interface CompiledEnvironment {
  /** The validated policy this was compiled from. */
  readonly policy: EnvironmentPolicy;
  /** Domain entries this environment consults: its own lists, plus the shared lists it uses. */
  readonly entryCount: number;
  readonly defaults: CompiledDefaults;
  readonly allow: DomainSet;
  readonly deny: DomainSet;
  /** Ports an entry without a port allows at this environment's level. */
  readonly defaultPorts: ReadonlySet<number> | 'any';
  /** Ports an alwaysAllow entry without a port allows: 80, 443 and the environment's allowedPorts. */
  readonly alwaysAllowPorts: ReadonlySet<number>;
  /** Method and path rules, inspection and secret scanning (SPEC §3 `content`). */
  readonly content: CompiledContent;
}

const WEB_PORTS: ReadonlySet<number> = new Set([80, 443]);

export function compileDefaults(defaults: PolicyDefaults): CompiledDefaults {
  return Object.freeze({
    [COMPILED]: true as const,
    source: defaults,
    trusted: compileDomainSet(defaults.trusted),
    alwaysAllow: compileDomainSet(defaults.alwaysAllow),
  });
}

/** Entries were validated on the way in (validateEnvironment); one that is not is a bug, not input. */
function parseAll(entries: readonly string[], field: string, id: string): readonly DomainPattern[] {
  const remembered = recallParsed(entries);
  if (remembered) return remembered;
  return entries.map((entry) => {
    const parsed = parseDomainPattern(entry);
    if (!parsed.ok) throw new Error(`environment ${JSON.stringify(id)}: ${field}: ${parsed.error}`);
    return parsed.pattern;
  });
}

/** Compiled lists by list object: the base an edit of a list is compiled over. */
const compiledLists = new WeakMap<readonly string[], CompiledDomainSet>();

function compileList(entries: readonly string[], field: string, id: string): CompiledDomainSet {
  let set = compiledLists.get(entries);
  if (set) return set;
  const patterns = parseAll(entries, field, id);
  const edit = takeEdit(entries);
  const base = edit && compiledLists.get(edit.from);
  set = base && edit ? editDomainSet(base, patterns, edit.touched) : compileDomainSet(patterns);
  compiledLists.set(entries, set);
  return set;
}

export function compileEnvironment(policy: EnvironmentPolicy, defaults: PolicyDefaults | CompiledDefaults): CompiledEnvironment {
  const shared = COMPILED in defaults ? defaults : compileDefaults(defaults);
  const allow = compileList(policy.allowedDomains, 'allowedDomains', policy.id);
  const deny = compileList(policy.deniedDomains, 'deniedDomains', policy.id);
  const explicitPorts = policy.allowedPorts ? new Set(policy.allowedPorts) : undefined;
  const usesTrusted = policy.access === 'trusted' || (policy.access === 'custom' && policy.includeDefaults);
  return Object.freeze({
    policy,
    entryCount:
      deny.size +
      shared.alwaysAllow.size +
      (policy.access === 'custom' ? allow.size : 0) +
      (usesTrusted ? shared.trusted.size : 0),
    defaults: shared,
    allow,
    deny,
    // `full` means any port unless the environment narrowed it; the others get web ports (SPEC §3).
    defaultPorts: explicitPorts ?? (policy.access === 'full' ? 'any' : WEB_PORTS),
    alwaysAllowPorts: new Set([...WEB_PORTS, ...(explicitPorts ?? [])]),
    content: compileContent(policy.content, policy.id),
  });
}

const isValidTarget = (target: Target): boolean =>
  typeof target.host === 'string' &&
  normalizeHost(target.host) === target.host &&
  Number.isInteger(target.port) &&
  target.port >= 1 &&
  target.port <= 65535;

/**
 * Allow or refuse `target`. Order: malformed, denied, private address, alwaysAllow, access level.
 * `exempt` holds `upstream.allowPrivateNetworks`; the caller applies the same block again to the
 * address DNS returns, since a name can resolve anywhere.
 */
export function decideTarget(env: CompiledEnvironment, target: Target, exempt?: CidrSet): Decision {
  const environment = env.policy.id;
  // The caller normalises; anything else here would be compared in a spelling we did not check.
  if (!isValidTarget(target)) return refusal('bad_request', environment);
  const { host, port } = target;

  // Deny wins over every allow, at every level. A deny entry without a port covers all ports.
  const denied = env.deny.match(host, port, 'any');
  if (denied.matched && denied.portAllowed) return refusal('host_denied', environment, denied.rule);

  // An IP literal is checked here, before any allow, so that no list or level (not even `full`
  // or alwaysAllow) can open the metadata service or loopback.
  if (isIpLiteral(host)) {
    const address = checkAddress(host, exempt ?? NO_EXEMPTIONS);
    if (address.blocked) return refusal('private_address', environment, address.class);
  }

  // A host that matched but on a refused port is remembered: if nothing allows the port later,
  // `port_not_allowed` names that entry, which tells the operator what to fix.
  let portRefusal: string | undefined;

  // alwaysAllow is reachable at every level, `none` included (SPEC §2 defaults.alwaysAllow).
  const always = env.defaults.alwaysAllow.match(host, port, env.alwaysAllowPorts);
  if (always.matched) {
    if (always.portAllowed) return allowed(always.rule, environment);
    portRefusal = always.rule;
  }

  const level = env.policy.access;
  let found: DomainMatch | undefined;
  switch (level) {
    case 'none':
      break;
    case 'full':
      if (env.defaultPorts === 'any' || env.defaultPorts.has(port)) return allowed('access:full', environment);
      return refusal('port_not_allowed', environment, 'access:full');
    case 'trusted':
      found = env.defaults.trusted.match(host, port, env.defaultPorts);
      break;
    case 'custom':
      found = env.allow.match(host, port, env.defaultPorts);
      if (!(found.matched && found.portAllowed) && env.policy.includeDefaults) {
        if (found.matched) portRefusal ??= found.rule;
        found = env.defaults.trusted.match(host, port, env.defaultPorts);
      }
      break;
  }
  if (found?.matched) {
    if (found.portAllowed) return allowed(found.rule, environment);
    portRefusal ??= found.rule;
  }
  if (portRefusal !== undefined) return refusal('port_not_allowed', environment, portRefusal);
  return refusal('host_not_allowed', environment, `access:${level}`);
}

function allowed(rule: string, environment: string): Decision {
  return { allow: true, reason: 'allowed', rule, environment };
}

function refusal(reason: Decision['reason'], environment: string, rule?: string): Decision {
  return rule === undefined ? { allow: false, reason, environment } : { allow: false, reason, rule, environment };
}

const NO_EXEMPTIONS = new CidrSet([]);
