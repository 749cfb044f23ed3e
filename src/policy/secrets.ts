// Credential formats that must not leave a sandbox except to their own service (SPEC §3
// `content.secrets`), and a streaming scanner for them. Only high-confidence formats: a fixed,
// distinctive prefix and a fixed or bounded length, so an ordinary request is never refused.
// Pure: the proxy feeds bytes in and turns a finding into a refusal.

import { compileDomainSet, type DomainSet } from './domain-set.js';
import { parseDomainPattern } from './domains.js';
import { remember } from './remember.js';

export interface SecretFormatSource {
  /** The kind, as logs and `rule` name it (`secret:github_token`). Never the value. */
  name: string;
  regex: string;
  /** The credential's own service: where sending it is its purpose, not a leak. */
  allowedHosts: string[];
}

export interface SecretFormat {
  name: string;
  pattern: RegExp;
  ownHosts: DomainSet;
}

export const builtinSecretFormats: readonly SecretFormatSource[] = [
  // AKIA long-term, ASIA temporary (STS) access key ids: 4 + 16 upper-case alphanumerics.
  { name: 'aws_access_key_id', regex: '(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])', allowedHosts: ['amazonaws.com', '*.amazonaws.com', '*.amazonaws.com.cn', '*.aws.amazon.com'] },
  // Classic GitHub tokens: prefix, underscore, 36 base62 characters (30 random + 6 checksum).
  { name: 'github_token', regex: 'gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9])', allowedHosts: ['github.com', '*.github.com', '*.githubusercontent.com', 'ghcr.io'] },
  { name: 'github_token', regex: 'github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9])', allowedHosts: ['github.com', '*.github.com', '*.githubusercontent.com', 'ghcr.io'] },
  { name: 'gitlab_token', regex: 'glpat-[A-Za-z0-9_-]{20,64}', allowedHosts: ['gitlab.com', '*.gitlab.com'] },
  { name: 'slack_token', regex: 'xox[abprs]-[0-9]{6,}-[A-Za-z0-9-]{8,200}', allowedHosts: ['slack.com', '*.slack.com'] },
  { name: 'anthropic_api_key', regex: 'sk-ant-[A-Za-z0-9_-]{32,200}', allowedHosts: ['api.anthropic.com', '*.anthropic.com'] },
  // Project, service-account and admin keys; the legacy form carries "T3BlbkFJ" ("OpenAI" in base64).
  { name: 'openai_api_key', regex: 'sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,250}', allowedHosts: ['api.openai.com', '*.openai.com'] },
  { name: 'openai_api_key', regex: 'sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9])', allowedHosts: ['api.openai.com', '*.openai.com'] },
  // No host owns a private key: it is refused everywhere.
  { name: 'private_key', regex: '-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----', allowedHosts: [] },
];

/**
 * The longest text a match may span. A match is found across any chunk border as long as it
 * is no longer than this; the built-in formats stay well under it. It is also how many bytes
 * of a body the scanner holds back before they may go upstream.
 */
export const SCAN_WINDOW = 512;

export type CompiledFormats = { ok: true; formats: SecretFormat[] } | { ok: false; errors: { path: string; message: string }[] };

/** Built-in formats plus the operator's (`content.secretPatterns`), each error with its path. */
export function compileSecretFormats(extra: readonly unknown[] = [], path = 'content.secretPatterns'): CompiledFormats {
  const errors: { path: string; message: string }[] = [];
  const formats: SecretFormat[] = [];
  const add = (source: SecretFormatSource, where: string): void => {
    let pattern: RegExp;
    try {
      pattern = new RegExp(source.regex, 'g');
    } catch (error) {
      errors.push({ path: `${where}.regex`, message: (error as Error).message });
      return;
    }
    if (pattern.test('')) {
      errors.push({ path: `${where}.regex`, message: 'matches the empty string: it would refuse every request' });
      return;
    }
    const hosts = source.allowedHosts.map((entry, i) => {
      const parsed = parseDomainPattern(entry);
      if (!parsed.ok) errors.push({ path: `${where}.allowedHosts[${i}]`, message: parsed.error });
      return parsed.ok ? parsed.pattern : undefined;
    });
    formats.push({ name: source.name, pattern, ownHosts: compileDomainSet(hosts.filter((h) => h !== undefined)) });
  };
  builtinSecretFormats.forEach((source, i) => add(source, `(built-in ${i})`));
  extra.forEach((raw, i) => {
    const where = `${path}[${i}]`;
    const item = raw as Partial<Record<string, unknown>>;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push({ path: where, message: 'expected a mapping with name, regex and allowedHosts' });
      return;
    }
    for (const key of Object.keys(item)) {
      if (!['name', 'regex', 'allowedHosts'].includes(key)) errors.push({ path: `${where}.${key}`, message: 'unknown key (expected one of: name, regex, allowedHosts)' });
    }
    if (typeof item.name !== 'string' || !/^[a-z0-9_]{1,64}$/.test(item.name)) {
      errors.push({ path: `${where}.name`, message: 'expected 1-64 characters of a-z, 0-9 and "_"' });
      return;
    }
    if (typeof item.regex !== 'string' || item.regex === '') {
      errors.push({ path: `${where}.regex`, message: 'expected a non-empty regular expression' });
      return;
    }
    const allowed = item.allowedHosts ?? [];
    if (!Array.isArray(allowed) || allowed.some((h) => typeof h !== 'string')) {
      errors.push({ path: `${where}.allowedHosts`, message: 'expected a list of domain patterns' });
      return;
    }
    add({ name: item.name, regex: item.regex, allowedHosts: allowed as string[] }, where);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, formats };
}

/** The formats that count as a leak when sent to host:port (its own service's formats do not). */
export function formatsFor(formats: readonly SecretFormat[], host: string, port: number): readonly SecretFormat[] {
  // Asked on every request with the same few hosts: remembered per format list.
  let byTarget = remembered.get(formats);
  if (!byTarget) {
    byTarget = new Map();
    remembered.set(formats, byTarget);
  }
  return remember(byTarget, `${host}:${port}`, () => {
    const leaks = formats.filter((f) => {
      const m = f.ownHosts.match(host, port, 'any');
      return !(m.matched && m.portAllowed);
    });
    // Most hosts own no format: they share the whole list rather than a copy of it.
    return leaks.length === formats.length ? formats : leaks;
  });
}

const remembered = new WeakMap<readonly SecretFormat[], Map<string, readonly SecretFormat[]>>();

/** First format found in a whole text (request line, headers). */
export function findSecret(formats: readonly SecretFormat[], text: string): string | undefined {
  for (const format of formats) {
    format.pattern.lastIndex = 0;
    if (format.pattern.test(text)) return format.name;
  }
  return undefined;
}

/**
 * Scans a stream chunk by chunk without buffering it: keeps the last SCAN_WINDOW characters
 * so a credential split across a chunk border is still seen, and holds those characters back
 * (`push` returns only what is cleared) so no part of a credential goes upstream before it is
 * known to be one. Bytes are read as latin1: one byte, one character, whatever the encoding.
 */
export class SecretScanner {
  private carry = '';
  private found: string | undefined;

  constructor(private readonly formats: readonly SecretFormat[]) {}

  get finding(): string | undefined {
    return this.found;
  }

  /** Feeds a chunk; returns the bytes now cleared to forward. Check `finding` after each call. */
  push(chunk: Buffer): Buffer {
    if (this.formats.length === 0) return chunk;
    const previous = this.carry.length;
    const text = this.carry + chunk.toString('latin1');
    this.scan(text, previous, false);
    const keep = Math.min(SCAN_WINDOW, text.length);
    this.carry = text.slice(text.length - keep);
    return Buffer.from(text.slice(0, text.length - keep), 'latin1');
  }

  /** End of stream: the held-back tail, scanned to its very end. */
  end(): Buffer {
    if (this.formats.length === 0) return Buffer.alloc(0);
    this.scan(this.carry, this.carry.length, true);
    const rest = Buffer.from(this.carry, 'latin1');
    this.carry = '';
    return rest;
  }

  /**
   * A match ending before `previous` was judged on the last call. One ending at the very end
   * of `text` waits for the next chunk (or the end): a trailing `(?!...)` needs the character after.
   */
  private scan(text: string, previous: number, final: boolean): void {
    if (this.found !== undefined) return;
    for (const format of this.formats) {
      const pattern = format.pattern;
      pattern.lastIndex = Math.max(0, previous - SCAN_WINDOW);
      for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
        const end = m.index + m[0].length;
        if (end >= previous && (end < text.length || final)) {
          this.found = format.name;
          return;
        }
        pattern.lastIndex = m.index + 1;
      }
    }
  }
}
