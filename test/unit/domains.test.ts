import { describe, it, expect } from 'vitest';
import { compileDomainSet } from '../../src/policy/domain-set.js';
import { normalizeHost, parseDomainPattern, type DomainPattern } from '../../src/policy/domains.js';

const WEB = new Set([80, 443]);

function patterns(...entries: string[]): DomainPattern[] {
  return entries.map((entry) => {
    const parsed = parseDomainPattern(entry);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.pattern;
  });
}

describe('normalizeHost', () => {
  const table: [input: string, expected: string | null, why: string][] = [
    ['example.com', 'example.com', 'already normal'],
    ['EXAMPLE.Com', 'example.com', 'case-insensitive'],
    ['example.com.', 'example.com', 'one trailing dot is the root label'],
    ['example.com..', null, 'a second trailing dot is an empty label'],
    ['.example.com', null, 'leading empty label'],
    ['a..example.com', null, 'empty label in the middle'],
    ['bücher.example', 'xn--bcher-kva.example', 'IDN compared in punycode'],
    ['BÜCHER.example', 'xn--bcher-kva.example', 'IDN upper case folds too'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', 'punycode stays as is'],
    ['_dmarc.example.com', '_dmarc.example.com', 'underscore appears in real names'],
    ['my-host.example.com', 'my-host.example.com', 'hyphen'],
    ['evil.com\x00.allowed.com', null, 'NUL truncation bypass'],
    ['evil.com\u0000.bücher.example', null, 'NUL with an IDN (goes through domainToASCII)'],
    // domainToASCII parses a URL host: it drops tabs and newlines, decodes %XX and stops at
    // `/`, `?`, `#` or `\`. Next to a non-ASCII character, none of that may reach it.
    ['ü\r', null, 'CR with an IDN (URL parsing would drop it)'],
    ['ü\t.example', null, 'tab with an IDN'],
    ['\nbücher.example', null, 'newline before an IDN'],
    ['ü/x.example', null, 'slash with an IDN (URL parsing would stop at it)'],
    ['ü?.example', null, 'question mark with an IDN'],
    ['ü#.example', null, 'hash with an IDN'],
    ['ü\\x.example', null, 'backslash with an IDN'],
    ['ü%41.example', null, 'percent-escape with an IDN (URL parsing would decode it)'],
    ['a b.com', null, 'space'],
    ['a%2ecom', null, 'percent-encoding'],
    ['user@example.com', null, 'userinfo smuggling'],
    ['example.com/path', null, 'path smuggling'],
    ['example.com\\x.evil', null, 'backslash'],
    ['example.com:443', null, 'ports are split off by the caller'],
    ['', null, 'empty'],
    ['.', null, 'root only'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`, '63-character label is the maximum'],
    [`${'a'.repeat(64)}.com`, null, 'label over 63'],
    [`${'a.'.repeat(125)}com`, `${'a.'.repeat(125)}com`, '253 characters is the maximum'],
    [`${'a.'.repeat(126)}com`, null, 'name over 253'],
    ['1.2.3.4', '1.2.3.4', 'IPv4 literal'],
    ['1.2.3.4.', '1.2.3.4', 'IPv4 with the root dot'],
    ['0x7f.1', '127.0.0.1', 'inet_aton hex form canonicalised'],
    ['2130706433', '127.0.0.1', 'decimal form canonicalised'],
    ['0177.0.0.1', '127.0.0.1', 'octal form canonicalised'],
    ['1.2.3.4.5', null, 'numeric last label but not an address: ambiguous'],
    ['example.123', null, 'numeric top-level domain does not exist'],
    ['1.2.3.4.example.com', '1.2.3.4.example.com', 'a name that starts like an IP is a name'],
    ['[2001:DB8::1]', '2001:db8::1', 'bracketed IPv6'],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1', 'IPv6 compressed'],
    ['[::ffff:127.0.0.1]', '::ffff:7f00:1', 'mapped IPv6 in hex'],
    ['[fe80::1%25eth0]', null, 'zone id'],
    ['[1.2.3.4]', null, 'brackets around IPv4'],
  ];
  it.each(table)('%j -> %j (%s)', (input, expected) => {
    expect(normalizeHost(input)).toBe(expected);
  });
});

describe('parseDomainPattern', () => {
  const accepted: [entry: string, kind: DomainPattern['kind'], host: string, port: number | undefined, why: string][] = [
    ['example.com', 'exact', 'example.com', undefined, 'plain domain'],
    ['Example.COM.', 'exact', 'example.com', undefined, 'stored normalised'],
    ['*.example.com', 'wildcard', 'example.com', undefined, 'leading wildcard stores the suffix'],
    ['*.co.uk', 'wildcard', 'co.uk', undefined, 'two labels are not a bare TLD (no public suffix list)'],
    ['*.bücher.example', 'wildcard', 'xn--bcher-kva.example', undefined, 'wildcard over an IDN'],
    ['example.com:8443', 'exact', 'example.com', 8443, 'port-scoped'],
    ['*.example.com:22', 'wildcard', 'example.com', 22, 'port-scoped wildcard'],
    ['1.2.3.4', 'ip', '1.2.3.4', undefined, 'IPv4'],
    ['1.2.3.4:8080', 'ip', '1.2.3.4', 8080, 'IPv4 with port'],
    ['2001:db8::1', 'ip', '2001:db8::1', undefined, 'bare IPv6'],
    ['[2001:DB8::1]:443', 'ip', '2001:db8::1', 443, 'bracketed IPv6 with port'],
    ['[2001:db8::1]', 'ip', '2001:db8::1', undefined, 'bracketed IPv6 without port'],
    ['example.com:65535', 'exact', 'example.com', 65535, 'highest port'],
  ];
  it.each(accepted)('accepts %j as %s %j port %j (%s)', (entry, kind, host, port) => {
    const parsed = parseDomainPattern(entry);
    expect(parsed).toEqual({ ok: true, pattern: port === undefined ? { kind, host, source: entry } : { kind, host, port, source: entry } });
  });

  const rejected: [entry: string, message: string, why: string][] = [
    ['', '"": an entry must not be empty', 'empty'],
    ['*example.com', '"*example.com": a wildcard is allowed only as a leading "*."', 'wildcard glued to the label'],
    ['a.*.com', '"a.*.com": a wildcard is allowed only as a leading "*."', 'wildcard in the middle'],
    ['*', '"*": a bare "*" is not allowed; use access "full" to allow every domain', 'match-everything'],
    ['**.x', '"**.x": a wildcard is allowed only as a leading "*."', 'double star'],
    ['*.*.example.com', '"*.*.example.com": a wildcard is allowed only as a leading "*."', 'two wildcards'],
    ['example.*', '"example.*": a wildcard is allowed only as a leading "*."', 'trailing wildcard'],
    ['*.com', '"*.com": a wildcard over the top-level domain "com" is not allowed; name a domain under it', 'bare TLD'],
    ['*.com.', '"*.com.": a wildcard over the top-level domain "com" is not allowed; name a domain under it', 'bare TLD with the root dot'],
    ['*.3.4', '"*.3.4": a wildcard cannot cover an IP address', 'wildcard over numbers'],
    ['example.com:0', '"example.com:0": the port must be a number from 1 to 65535', 'port 0'],
    ['example.com:65536', '"example.com:65536": the port must be a number from 1 to 65535', 'port too high'],
    ['example.com:', '"example.com:": the port must be a number from 1 to 65535', 'empty port'],
    ['example.com:http', '"example.com:http": the port must be a number from 1 to 65535', 'named port'],
    ['exa mple.com', '"exa mple.com": an entry must not contain spaces', 'space'],
    ['example.com/x', '"example.com/x": not a valid domain name or IP address', 'path'],
    ['evil.com\u0000.ok.com', '"evil.com\\u0000.ok.com": not a valid domain name or IP address', 'NUL, shown escaped'],
    ['example..com', '"example..com": not a valid domain name or IP address', 'empty label'],
    ['[1.2.3.4]:80', '"[1.2.3.4]:80": brackets are only for IPv6 addresses', 'IPv4 in brackets'],
    ['[2001:db8::1', '"[2001:db8::1": missing "]" after an IPv6 address', 'unclosed bracket'],
    ['[2001:db8::1]443', '"[2001:db8::1]443": expected ":port" after "]"', 'missing colon'],
    ['2001:db8::zz', '"2001:db8::zz": not a valid IPv6 address', 'bad IPv6'],
  ];
  it.each(rejected)('rejects %j (%s)', (entry, message) => {
    expect(parseDomainPattern(entry)).toEqual({ ok: false, error: message });
  });
});

describe('compileDomainSet.match', () => {
  const set = compileDomainSet(
    patterns(
      'example.com',
      '*.example.com',
      'apex-only.org',
      '*.sub-only.org',
      'ssh.example.net:22',
      '*.git.example.net:9418',
      'both.example.net',
      'both.example.net:8443',
      'xn--bcher-kva.example',
      '1.2.3.4',
      '5.6.7.8:8080',
      '2001:db8::1',
      '[2001:db8::2]:443',
    ),
  );
  // Host inputs are already normalised, as decideTarget's caller guarantees.
  const table: [host: string, port: number, expected: ReturnType<typeof set.match>, why: string][] = [
    ['example.com', 443, { matched: true, portAllowed: true, rule: 'example.com' }, 'exact apex'],
    ['a.example.com', 443, { matched: true, portAllowed: true, rule: '*.example.com' }, 'one label deeper'],
    ['a.b.c.example.com', 80, { matched: true, portAllowed: true, rule: '*.example.com' }, 'deep subdomain'],
    ['apex-only.org', 443, { matched: true, portAllowed: true, rule: 'apex-only.org' }, 'exact'],
    ['www.apex-only.org', 443, { matched: false }, 'an exact entry does not cover subdomains'],
    ['sub-only.org', 443, { matched: false }, '*.x never matches x itself (gcr.io vs *.gcr.io)'],
    ['a.sub-only.org', 443, { matched: true, portAllowed: true, rule: '*.sub-only.org' }, 'wildcard'],
    ['evilexample.com', 443, { matched: false }, 'suffix without a dot boundary'],
    ['evil-example.com', 443, { matched: false }, 'suffix without a dot boundary (hyphen)'],
    ['example.com.evil.com', 443, { matched: false }, 'allowed name as a prefix of an evil one'],
    ['example.co', 443, { matched: false }, 'truncated'],
    ['com', 443, { matched: false }, 'the TLD alone'],
    ['example.com', 22, { matched: true, portAllowed: false, rule: 'example.com' }, 'portless entry allows default ports only'],
    ['ssh.example.net', 22, { matched: true, portAllowed: true, rule: 'ssh.example.net:22' }, 'port-scoped entry'],
    ['ssh.example.net', 443, { matched: true, portAllowed: false, rule: 'ssh.example.net:22' }, 'port-scoped entry allows only its port'],
    ['repo.git.example.net', 9418, { matched: true, portAllowed: true, rule: '*.git.example.net:9418' }, 'port-scoped wildcard'],
    ['repo.git.example.net', 443, { matched: true, portAllowed: false, rule: '*.git.example.net:9418' }, 'port-scoped wildcard, other port'],
    ['both.example.net', 443, { matched: true, portAllowed: true, rule: 'both.example.net' }, 'portless entry of a pair'],
    ['both.example.net', 8443, { matched: true, portAllowed: true, rule: 'both.example.net:8443' }, 'port entry of a pair'],
    ['both.example.net', 22, { matched: true, portAllowed: false, rule: 'both.example.net' }, 'neither allows'],
    ['xn--bcher-kva.example', 443, { matched: true, portAllowed: true, rule: 'xn--bcher-kva.example' }, 'punycode entry'],
    ['1.2.3.4', 443, { matched: true, portAllowed: true, rule: '1.2.3.4' }, 'identical IP entry'],
    ['1.2.3.5', 443, { matched: false }, 'other IP'],
    ['5.6.7.8', 8080, { matched: true, portAllowed: true, rule: '5.6.7.8:8080' }, 'IP with port'],
    ['5.6.7.8', 443, { matched: true, portAllowed: false, rule: '5.6.7.8:8080' }, 'IP with port, other port'],
    ['2001:db8::1', 443, { matched: true, portAllowed: true, rule: '2001:db8::1' }, 'IPv6 entry'],
    ['2001:db8::2', 443, { matched: true, portAllowed: true, rule: '[2001:db8::2]:443' }, 'bracketed IPv6 entry with port'],
    ['2001:db8::2', 80, { matched: true, portAllowed: false, rule: '[2001:db8::2]:443' }, 'bracketed IPv6 entry, other port'],
  ];
  it.each(table)('%s:%i (%s)', (host, port, expected) => {
    expect(set.match(host, port, WEB)).toEqual(expected);
  });

  it("defaultPorts 'any' lets portless entries allow every port, not port-scoped ones", () => {
    expect(set.match('example.com', 5432, 'any')).toEqual({ matched: true, portAllowed: true, rule: 'example.com' });
    expect(set.match('ssh.example.net', 5432, 'any')).toEqual({ matched: true, portAllowed: false, rule: 'ssh.example.net:22' });
  });

  it('reports the entry that allowed when several match (exact refuses the port, wildcard allows it)', () => {
    const s = compileDomainSet(patterns('api.example.com:8443', '*.example.com'));
    expect(s.match('api.example.com', 443, WEB)).toEqual({ matched: true, portAllowed: true, rule: '*.example.com' });
    expect(s.match('api.example.com', 8443, WEB)).toEqual({ matched: true, portAllowed: true, rule: 'api.example.com:8443' });
    expect(s.match('api.example.com', 22, WEB)).toEqual({ matched: true, portAllowed: false, rule: 'api.example.com:8443' });
  });

  it('an IP literal never matches a domain pattern, even one spelled like its digits', () => {
    // parseDomainPattern refuses `*.3.4`; built by hand to prove the matcher holds on its own.
    const s = compileDomainSet([
      { kind: 'wildcard', host: '3.4', source: '*.3.4' },
      { kind: 'exact', host: '1.2.3.4', source: 'not-an-ip-entry' },
      ...patterns('*.example.com'),
    ]);
    expect(s.match('1.2.3.4', 443, WEB)).toEqual({ matched: false });
    expect(s.match('::ffff:102:304', 443, WEB)).toEqual({ matched: false });
  });

  it('counts its entries', () => {
    expect(set.size).toBe(13);
    expect(compileDomainSet([]).match('example.com', 443, WEB)).toEqual({ matched: false });
  });
});
