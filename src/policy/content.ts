// The content layer of SPEC §3: which requests inside an allowed destination may pass (method
// and path rules) and which tunnels are opened up to see them (`inspect`). Compiled once per
// environment; a request costs a few hash lookups and the globs of the rules naming its host.

import picomatch from 'picomatch';
import { compileDomainSet, type DomainSet } from './domain-set.js';
import { parseDomainPattern, type DomainPattern } from './domains.js';
import type { ContentPolicy, Decision } from './types.js';

interface CompiledRule {
  /** `content.rules[i]`: what decisions report as `rule`. */
  name: string;
  hosts: DomainSet;
  methods: ReadonlySet<string> | undefined;
  paths: ((path: string) => boolean) | undefined;
  action: 'allow' | 'deny';
}

export interface CompiledContent {
  readonly inspect: 'off' | 'rules' | 'all';
  readonly exclude: DomainSet;
  /** Every host any rule names: what `inspect: rules` intercepts. */
  readonly ruleHosts: DomainSet;
  readonly rules: readonly CompiledRule[];
  readonly methods: ReadonlySet<string> | undefined;
  /** Undefined: no limit. */
  readonly maxRequestBodyBytes: number | undefined;
  readonly secrets: 'block' | 'log' | 'off';
}

export interface ContentRequest {
  host: string;
  port: number;
  method: string;
  /** The request target as sent (origin form, query included). */
  path: string;
}

function patterns(entries: readonly string[], where: string): DomainPattern[] {
  return entries.map((entry) => {
    const parsed = parseDomainPattern(entry);
    // validateEnvironment checked every entry on the way in: a failure here is a bug, not input.
    if (!parsed.ok) throw new Error(`${where}: ${parsed.error}`);
    return parsed.pattern;
  });
}

export function compileContent(policy: ContentPolicy | undefined, id = ''): CompiledContent {
  const rules = (policy?.rules ?? []).map((rule, i): CompiledRule => {
    const name = `content.rules[${i}]`;
    // dot: true, or `/**` would not cover `/.well-known/...` and a deny rule would miss it.
    const matcher = rule.paths ? picomatch(rule.paths, { dot: true, strictBrackets: true }) : undefined;
    return {
      name,
      hosts: compileDomainSet(patterns(rule.hosts, `environment ${id}: ${name}.hosts`)),
      methods: rule.methods ? new Set(rule.methods.map((m) => m.toUpperCase())) : undefined,
      paths: matcher,
      action: rule.action,
    };
  });
  return Object.freeze({
    inspect: policy?.inspect ?? 'off',
    exclude: compileDomainSet(patterns(policy?.inspectExclude ?? [], `environment ${id}: content.inspectExclude`)),
    ruleHosts: compileDomainSet(patterns((policy?.rules ?? []).flatMap((r) => r.hosts), `environment ${id}: content.rules`)),
    rules,
    methods: policy?.methods ? new Set(policy.methods.map((m) => m.toUpperCase())) : undefined,
    maxRequestBodyBytes: policy?.maxRequestBodyBytes,
    // Default on: a leaked credential is the loss this layer exists to stop (issue: "default block").
    secrets: policy?.secrets ?? 'block',
  });
}

const matchesHost = (set: DomainSet, host: string, port: number): boolean => {
  const m = set.match(host, port, 'any');
  return m.matched && m.portAllowed;
};

/** Does the tunnel to host:port get opened up? Excluded hosts (pinned, mutual TLS) never are. */
export function shouldInspect(content: CompiledContent, host: string, port: number): boolean {
  if (content.inspect === 'off' || matchesHost(content.exclude, host, port)) return false;
  return content.inspect === 'all' || matchesHost(content.ruleHosts, host, port);
}

const HEX = /%([0-9a-fA-F]{2})/g;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The path the rules compare: query dropped, percent-encoded unreserved characters decoded
 * (RFC 3986 §6.2.2.2), dot segments removed (§5.2.4) and empty segments dropped. Without this, `/%61dmin/x` or
 * `/public/../admin/x` or `//admin/x` would slip past a deny rule for `/admin/**` while the
 * server reads `/admin/x`. Encoded slashes (`%2F`) stay encoded: servers disagree on them, so a rule
 * cannot either. Null when the target is not origin-form.
 */
export function canonicalPath(target: string): string | null {
  if (!target.startsWith('/')) return null;
  const end = target.search(/[?#]/);
  let path = end < 0 ? target : target.slice(0, end);
  path = path.replace(HEX, (whole, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : whole.toUpperCase();
  });
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '.') {
      if (last) out.push('');
    } else if (segment === '..') {
      out.pop();
      if (last) out.push('');
    } else if (segment !== '' || last) {
      out.push(segment);
    }
  });
  return `/${out.join('/')}`;
}

/**
 * Allow or refuse one request to an admitted destination. First matching rule wins; where none
 * matches, `content.methods` (if given) lists the methods allowed.
 */
export function decideRequest(content: CompiledContent, environment: string, request: ContentRequest): Decision {
  const method = request.method.toUpperCase();
  if (!request.path.startsWith('/')) return { allow: false, reason: 'bad_request', environment };
  // Only path rules read the canonical path: most environments have none, and a request
  // should not pay for building it.
  const path = content.rules.length > 0 ? (canonicalPath(request.path) as string) : request.path;
  for (const rule of content.rules) {
    if (!matchesHost(rule.hosts, request.host, request.port)) continue;
    if (rule.methods && !rule.methods.has(method)) continue;
    if (rule.paths && !rule.paths(path)) continue;
    return rule.action === 'allow'
      ? { allow: true, reason: 'allowed', rule: rule.name, environment }
      : { allow: false, reason: 'content_filtered', rule: rule.name, environment };
  }
  if (content.methods && !content.methods.has(method)) return { allow: false, reason: 'content_filtered', rule: 'content.methods', environment };
  return content.methods ? { allow: true, reason: 'allowed', rule: 'content.methods', environment } : { allow: true, reason: 'allowed', environment };
}
