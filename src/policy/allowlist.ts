// The Trusted allowlist file (allowlists/default.yaml): `domains:` and a list of patterns.
// The caller reads and parses the YAML; this checks the value and compiles nothing.

import { parseDomainPattern, type DomainPattern } from './domains.js';

export type AllowlistResult =
  | { ok: true; patterns: DomainPattern[] }
  | { ok: false; errors: { path: string; message: string }[] };

const describe = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a mapping' : JSON.stringify(value) ?? typeof value;

export function parseAllowlist(doc: unknown): AllowlistResult {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, errors: [{ path: '(top level)', message: `expected a mapping with a "domains" list, got ${describe(doc)}` }] };
  }
  const errors: { path: string; message: string }[] = [];
  for (const key of Object.keys(doc)) {
    if (key !== 'domains') errors.push({ path: key, message: 'unknown key (expected: domains)' });
  }
  const domains = (doc as Record<string, unknown>).domains;
  if (!Array.isArray(domains)) {
    errors.push({ path: 'domains', message: `expected a list of domain patterns, got ${domains === undefined ? 'nothing' : describe(domains)}` });
    return { ok: false, errors };
  }
  const patterns: DomainPattern[] = [];
  domains.forEach((entry, i) => {
    if (typeof entry !== 'string') {
      // `- *.gcr.io` unquoted is a YAML alias, and `- 8080` a number: say what arrived.
      errors.push({ path: `domains[${i}]`, message: `expected a domain pattern string, got ${describe(entry)}` });
      return;
    }
    const parsed = parseDomainPattern(entry);
    if (parsed.ok) patterns.push(parsed.pattern);
    else errors.push({ path: `domains[${i}]`, message: parsed.error });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, patterns };
}
