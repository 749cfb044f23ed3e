// The secret formats and the streaming scanner: every format found whole, found across every
// chunk border, exempt at its own service, and ordinary text left alone.

import { describe, expect, it } from 'vitest';
import { compileSecretFormats, findSecret, formatsFor, SCAN_WINDOW, SecretScanner, type SecretFormat } from '../../src/policy/secrets.js';
import { fakePrivateKey, fakeSecrets } from '../helpers/fake-secrets.js';

const compiled = compileSecretFormats();
if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
const formats = compiled.formats;

/** Feeds `text` in chunks split at `cuts`; returns the finding and every byte released. */
function stream(all: readonly SecretFormat[], text: string, cuts: number[]): { finding: string | undefined; released: string } {
  const scanner = new SecretScanner(all);
  const parts: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    parts.push(scanner.push(Buffer.from(text.slice(from, cut), 'latin1')));
    from = cut;
    if (scanner.finding) return { finding: scanner.finding, released: Buffer.concat(parts).toString('latin1') };
  }
  parts.push(scanner.end());
  return { finding: scanner.finding, released: Buffer.concat(parts).toString('latin1') };
}

describe('built-in formats', () => {
  it.each(fakeSecrets.map((s) => [s.kind, s.value] as const))('%s is found in a header value (%s)', (kind, value) => {
    expect(findSecret(formats, `authorization: Bearer ${value}\n`)).toBe(kind);
    expect(findSecret(formats, `{"key":"${value}"}`)).toBe(kind);
    expect(findSecret(formats, `/upload?token=${encodeURIComponent(value)}&x=1`)).toBe(kind);
  });

  it('finds a private-key block, and no host is its own service', () => {
    expect(findSecret(formats, `{"key":"${fakePrivateKey.replace(/\n/g, '\\n')}"}`)).toBe('private_key');
    expect(findSecret(formatsFor(formats, 'github.com', 443), fakePrivateKey)).toBe('private_key');
    expect(findSecret(formats, '-----BEGIN OPENSSH PRIVATE KEY-----')).toBe('private_key');
    expect(findSecret(formats, '-----BEGIN PGP PRIVATE KEY BLOCK-----')).toBe('private_key');
    expect(findSecret(formats, '-----BEGIN CERTIFICATE-----')).toBeUndefined();
    expect(findSecret(formats, '-----BEGIN PUBLIC KEY-----')).toBeUndefined();
  });

  it.each(fakeSecrets.map((s) => [s.kind, s.ownHost, s.value] as const))('%s is not a leak to its own service %s', (_kind, host, value) => {
    expect(findSecret(formatsFor(formats, host, 443), value)).toBeUndefined();
    expect(findSecret(formatsFor(formats, 'paste.example.com', 443), value)).toBeDefined();
  });

  // [text, why it must pass]
  const harmless: [string, string][] = [
    ['GET /search?q=AKIA HTTP/1.1', 'the prefix alone'],
    [`AKIA${'B'.repeat(15)}`, 'one character short'],
    [`AKIA${'B'.repeat(17)}`, 'one character long: not an access key id'],
    [`ghp_${'a'.repeat(35)}`, 'a GitHub token one short'],
    [`ghx_${'a'.repeat(36)}`, 'no such GitHub prefix'],
    ['sk-ant-short', 'an Anthropic prefix with too little after it'],
    [`sk-${'a'.repeat(48)}`, 'sk- and 48 characters without the OpenAI marker: too common to refuse'],
    ['xoxb-not-a-token', 'a Slack prefix without the numeric workspace part'],
    ['glpat-short', 'a GitLab prefix too short'],
    ['{"name":"left-pad","version":"1.3.0","dist":{"shasum":"5b3f0a9c8e"}}', 'an npm publish body'],
  ];
  it.each(harmless)('passes %j (%s)', (text) => {
    expect(findSecret(formats, text)).toBeUndefined();
  });
});

describe('streaming scanner', () => {
  it.each(fakeSecrets.map((s) => [s.kind, s.value] as const))('finds %s split at every border', (kind, value) => {
    const text = `{"padding":"${'x'.repeat(100)}","token":"${value}","tail":"${'y'.repeat(50)}"}`;
    const start = text.indexOf(value);
    for (let cut = start - 1; cut <= start + value.length + 1; cut++) {
      const result = stream(formats, text, [cut]);
      expect(result.finding, `cut at ${cut - start}`).toBe(kind);
      // Nothing of the credential went out before it was known to be one.
      expect(result.released.includes(value.slice(0, 8)), `released a prefix at cut ${cut - start}`).toBe(false);
    }
  });

  it('finds a token split into one-byte chunks', () => {
    const value = fakeSecrets[2]?.value as string;
    const text = `a=${value}`;
    expect(stream(formats, text, Array.from({ length: text.length - 1 }, (_, i) => i + 1)).finding).toBe('github_token');
  });

  it('waits for the next byte before judging a fixed-length format at a chunk end', () => {
    // 21 upper-case characters are not an access key id; the chunk ends after 20 of them.
    const text = `id=AKIA${'B'.repeat(16)}C&more`;
    expect(stream(formats, text, [text.indexOf('C')]).finding).toBeUndefined();
    const real = `id=AKIA${'B'.repeat(16)}`;
    expect(stream(formats, real, [real.length]).finding).toBe('aws_access_key_id');
  });

  it('releases every byte of a clean stream, in order, holding back at most the window', () => {
    const text = Array.from({ length: 5000 }, (_, i) => String.fromCharCode(32 + ((i * 31) % 90))).join('');
    const scanner = new SecretScanner(formats);
    const first = scanner.push(Buffer.from(text.slice(0, 3000), 'latin1'));
    expect(first.length).toBe(3000 - SCAN_WINDOW);
    const rest = Buffer.concat([scanner.push(Buffer.from(text.slice(3000), 'latin1')), scanner.end()]);
    expect(scanner.finding).toBeUndefined();
    expect(Buffer.concat([first, rest]).toString('latin1')).toBe(text);
  });

  it('passes binary bodies through byte for byte', () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7 + 3) & 0xff));
    const scanner = new SecretScanner(formats);
    const out = Buffer.concat([scanner.push(bytes.subarray(0, 65_536)), scanner.push(bytes.subarray(65_536)), scanner.end()]);
    expect(out.equals(bytes)).toBe(true);
  });
});

describe('operator formats (content.secretPatterns)', () => {
  it('adds a format with its own hosts', () => {
    const result = compileSecretFormats([{ name: 'acme_key', regex: 'acme_[0-9a-f]{32}', allowedHosts: ['api.acme.test'] }]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const key = `acme_${'0f'.repeat(16)}`;
    expect(findSecret(result.formats, `x-key: ${key}`)).toBe('acme_key');
    expect(findSecret(formatsFor(result.formats, 'api.acme.test', 443), `x-key: ${key}`)).toBeUndefined();
  });

  // [entry, path of the error, why]
  const bad: [unknown, string, string][] = [
    [{ name: 'x', regex: '(' }, 'content.secretPatterns[0].regex', 'not a regular expression'],
    [{ name: 'x', regex: 'a*' }, 'content.secretPatterns[0].regex', 'matches the empty string'],
    [{ name: 'Bad Name', regex: 'x' }, 'content.secretPatterns[0].name', 'names are log labels'],
    [{ name: 'x', regex: 'x', allowedHosts: ['a.*.com'] }, 'content.secretPatterns[0].allowedHosts[0]', 'a bad domain pattern'],
    [{ name: 'x', regex: 'x', extra: 1 }, 'content.secretPatterns[0].extra', 'unknown key'],
    ['x', 'content.secretPatterns[0]', 'not a mapping'],
  ];
  it.each(bad)('refuses %j at %s (%s)', (entry, path) => {
    const result = compileSecretFormats([entry]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((e) => e.path)).toContain(path);
  });
});
