// Validation of an environment policy (SPEC §3) as it arrives from YAML, JSON or the admin API.
// Every error is collected with its path, so an operator fixes a file in one pass; the result
// is a plain object with every default filled in, the only shape the rest of the code sees.

import picomatch from 'picomatch';
import { parseDomainPattern } from './domains.js';
import { reusableParsed } from './parsed-patterns.js';
import type { AccessLevel, ContentPolicy, ContentRule, EnvironmentPolicy, RateLimitPolicy } from './types.js';

export interface PolicyError {
  path: string;
  message: string;
}

export type EnvironmentResult = { ok: true; value: EnvironmentPolicy } | { ok: false; errors: PolicyError[] };

const ACCESS_LEVELS: readonly AccessLevel[] = ['none', 'trusted', 'full', 'custom'];
const ID = /^[a-z0-9_-]{1,64}$/;
/** RFC 9110 §5.6.2 token: what a method may be made of. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const TOP_KEYS = ['id', 'name', 'access', 'allowedDomains', 'includeDefaults', 'deniedDomains', 'archived', 'allowedPorts', 'rateLimit', 'content'];
const RATE_KEYS = ['requestsPerSecond', 'burst', 'maxConnections', 'bandwidthBytesPerSecond'];
const CONTENT_KEYS = ['inspect', 'inspectExclude', 'methods', 'rules', 'maxRequestBodyBytes', 'secrets'];
const RULE_KEYS = ['hosts', 'methods', 'paths', 'action'];

const describe = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'a list'
      : typeof value === 'object'
        ? 'a mapping'
        : typeof value === 'number'
          ? String(value) // JSON would print Infinity and NaN as null
          : (JSON.stringify(value) ?? typeof value);

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Error collector: each checker returns the normalised value, or undefined after recording why not. */
class Checker {
  readonly errors: PolicyError[] = [];

  fail(path: string, message: string): undefined {
    this.errors.push({ path: path || '(top level)', message });
    return undefined;
  }

  expected(path: string, what: string, value: unknown): undefined {
    return this.fail(path, `expected ${what}, got ${describe(value)}`);
  }

  object(path: string, value: unknown, keys: readonly string[]): Record<string, unknown> | undefined {
    if (!isPlainObject(value)) return this.expected(path, 'a mapping', value);
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) {
        this.fail(path ? `${path}.${key}` : key, `unknown key (expected one of: ${keys.join(', ')})`);
      }
    }
    return value;
  }

  boolean(path: string, value: unknown): boolean | undefined {
    return typeof value === 'boolean' ? value : this.expected(path, 'true or false', value);
  }

  oneOf<T extends string>(path: string, value: unknown, values: readonly T[]): T | undefined {
    return typeof value === 'string' && (values as readonly string[]).includes(value)
      ? (value as T)
      : this.expected(path, `one of ${values.join(', ')}`, value);
  }

  integer(path: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    return this.expected(path, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`, value);
  }

  /** A list whose items are each checked; items that fail are dropped (the error is recorded). */
  list<T>(path: string, value: unknown, item: (path: string, value: unknown) => T | undefined, nonEmpty = false): T[] | undefined {
    if (!Array.isArray(value)) return this.expected(path, 'a list', value);
    if (nonEmpty && value.length === 0) return this.fail(path, 'must not be empty');
    const out: T[] = [];
    value.forEach((v, i) => {
      const checked = item(`${path}[${i}]`, v);
      if (checked !== undefined) out.push(checked);
    });
    return out;
  }

  domainPattern = (path: string, value: unknown): string | undefined => {
    if (typeof value !== 'string') return this.expected(path, 'a domain pattern string', value);
    const parsed = parseDomainPattern(value);
    return parsed.ok ? value : this.fail(path, parsed.error);
  };

  method = (path: string, value: unknown): string | undefined => {
    if (typeof value !== 'string' || !HTTP_TOKEN.test(value)) return this.expected(path, 'an HTTP method such as "GET"', value);
    return value.toUpperCase();
  };

  pathGlob = (path: string, value: unknown): string | undefined => {
    if (typeof value !== 'string' || value === '') return this.expected(path, 'a non-empty path glob such as "/api/**"', value);
    // A URL path always starts with "/": a glob like "api/**" would silently never match.
    if (!value.startsWith('/') && !value.startsWith('*')) return this.fail(path, `${JSON.stringify(value)}: a path glob must start with "/" (or "*")`);
    try {
      picomatch(value, { strictBrackets: true });
      return value;
    } catch (error) {
      return this.fail(path, `${JSON.stringify(value)}: ${(error as Error).message}`);
    }
  };
}

function checkRateLimit(c: Checker, value: unknown): RateLimitPolicy | undefined {
  const raw = c.object('rateLimit', value, RATE_KEYS);
  if (!raw) return undefined;
  const out: RateLimitPolicy = {};
  if (raw.requestsPerSecond !== undefined) {
    const rps = raw.requestsPerSecond;
    if (typeof rps === 'number' && Number.isFinite(rps) && rps > 0) out.requestsPerSecond = rps;
    else c.expected('rateLimit.requestsPerSecond', 'a number > 0', rps);
  }
  if (raw.burst !== undefined) {
    const burst = c.integer('rateLimit.burst', raw.burst, 1);
    if (burst !== undefined) out.burst = burst;
  }
  if (raw.maxConnections !== undefined) {
    const max = c.integer('rateLimit.maxConnections', raw.maxConnections, 1);
    if (max !== undefined) out.maxConnections = max;
  }
  if (raw.bandwidthBytesPerSecond !== undefined) {
    const bytes = c.integer('rateLimit.bandwidthBytesPerSecond', raw.bandwidthBytesPerSecond, 0);
    if (bytes !== undefined) out.bandwidthBytesPerSecond = bytes;
  }
  return out;
}

function checkRule(c: Checker, path: string, value: unknown): ContentRule | undefined {
  const raw = c.object(path, value, RULE_KEYS);
  if (!raw) return undefined;
  let rule: Partial<ContentRule> = {};
  if (raw.hosts === undefined) c.fail(`${path}.hosts`, 'required: the hosts this rule applies to');
  else rule.hosts = c.list(`${path}.hosts`, raw.hosts, c.domainPattern, true);
  if (raw.methods !== undefined) rule.methods = c.list(`${path}.methods`, raw.methods, c.method, true);
  if (raw.paths !== undefined) rule.paths = c.list(`${path}.paths`, raw.paths, c.pathGlob, true);
  if (raw.action === undefined) c.fail(`${path}.action`, 'required: allow or deny');
  else rule.action = c.oneOf(`${path}.action`, raw.action, ['allow', 'deny'] as const);
  rule = Object.fromEntries(Object.entries(rule).filter(([, v]) => v !== undefined));
  return rule.hosts && rule.action ? (rule as ContentRule) : undefined;
}

function checkContent(c: Checker, value: unknown): ContentPolicy | undefined {
  const raw = c.object('content', value, CONTENT_KEYS);
  if (!raw) return undefined;
  const out: ContentPolicy = {};
  if (raw.inspect !== undefined) out.inspect = c.oneOf('content.inspect', raw.inspect, ['off', 'rules', 'all'] as const);
  if (raw.inspectExclude !== undefined) out.inspectExclude = c.list('content.inspectExclude', raw.inspectExclude, c.domainPattern);
  if (raw.methods !== undefined) out.methods = c.list('content.methods', raw.methods, c.method);
  if (raw.rules !== undefined) {
    out.rules = c.list('content.rules', raw.rules, (path, rule) => checkRule(c, path, rule));
  }
  if (raw.maxRequestBodyBytes !== undefined) {
    out.maxRequestBodyBytes = c.integer('content.maxRequestBodyBytes', raw.maxRequestBodyBytes, 0);
  }
  if (raw.secrets !== undefined) out.secrets = c.oneOf('content.secrets', raw.secrets, ['block', 'log', 'off'] as const);
  return out;
}

/**
 * Check `raw` against SPEC §3 and fill defaults. `idFromFile` is the id a file name implies
 * (`environments/web.yaml` -> `web`): used when the object has no id, an error when it disagrees.
 * `previous`, the version `raw` replaces, lends the parsed entries the two lists share.
 */
export function validateEnvironment(raw: unknown, idFromFile?: string, previous?: EnvironmentPolicy): EnvironmentResult {
  const c = new Checker();
  const source = c.object('', raw, TOP_KEYS);
  if (!source) return { ok: false, errors: c.errors };

  let id: string | undefined;
  if (source.id === undefined) {
    if (idFromFile === undefined) c.fail('id', 'required: 1-64 characters of a-z, 0-9, "_" and "-"');
    else if (ID.test(idFromFile)) id = idFromFile;
    else c.fail('id', `the file name gives the id ${JSON.stringify(idFromFile)}, expected 1-64 characters of a-z, 0-9, "_" and "-"`);
  } else if (typeof source.id !== 'string' || !ID.test(source.id)) {
    c.expected('id', '1-64 characters of a-z, 0-9, "_" and "-"', source.id);
  } else if (idFromFile !== undefined && source.id !== idFromFile) {
    c.fail('id', `${JSON.stringify(source.id)} does not match the id ${JSON.stringify(idFromFile)} given by the file name`);
  } else {
    id = source.id;
  }

  let name: string | undefined;
  if (source.name !== undefined) {
    if (typeof source.name === 'string' && source.name.trim() !== '') name = source.name;
    else c.expected('name', 'a non-empty string', source.name);
  }

  let access: AccessLevel | undefined;
  if (source.access === undefined) c.fail('access', `required: one of ${ACCESS_LEVELS.join(', ')}`);
  else access = c.oneOf('access', source.access, ACCESS_LEVELS);

  const patterns = (key: 'allowedDomains' | 'deniedDomains'): string[] => {
    const value = source[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) return c.expected(key, 'a list', value) ?? [];
    // Keep what parsing found, so compiling the validated policy does not parse 100 000 entries
    // again. A plain loop, not c.list: the path string of each item is made only for an error.
    const reuse = reusableParsed(value, previous?.[key]);
    const { list, parsed } = reuse.build((from, to, kept, keptParsed) => {
      for (let i = from; i < to; i++) {
        const item: unknown = value[i];
        if (typeof item !== 'string') {
          c.expected(`${key}[${i}]`, 'a domain pattern string', item);
          continue;
        }
        const result = parseDomainPattern(item);
        if (!result.ok) {
          c.fail(`${key}[${i}]`, result.error);
          continue;
        }
        kept.push(item);
        keptParsed.push(result.pattern);
      }
    });
    reuse.remember(list, parsed);
    return list;
  };
  const allowedDomains = patterns('allowedDomains');
  const deniedDomains = patterns('deniedDomains');
  const includeDefaults = source.includeDefaults === undefined ? false : c.boolean('includeDefaults', source.includeDefaults);
  const archived = source.archived === undefined ? false : c.boolean('archived', source.archived);

  let allowedPorts: number[] | undefined;
  if (source.allowedPorts !== undefined) {
    // An empty list would make every entry without a port unreachable: almost surely a mistake.
    allowedPorts = c.list('allowedPorts', source.allowedPorts, (path, v) => c.integer(path, v, 1, 65535), true);
  }
  const rateLimit = source.rateLimit === undefined ? undefined : checkRateLimit(c, source.rateLimit);
  const content = source.content === undefined ? undefined : checkContent(c, source.content);

  if (c.errors.length > 0 || id === undefined || access === undefined) return { ok: false, errors: c.errors };
  const value: EnvironmentPolicy = {
    id,
    name: name ?? id,
    access,
    allowedDomains,
    includeDefaults: includeDefaults as boolean,
    deniedDomains,
    archived: archived as boolean,
  };
  if (allowedPorts) value.allowedPorts = allowedPorts;
  if (rateLimit) value.rateLimit = rateLimit;
  if (content) value.content = content;
  return { ok: true, value };
}
