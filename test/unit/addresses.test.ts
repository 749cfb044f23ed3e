import { describe, it, expect } from 'vitest';
import { canonicalIp, checkAddress, CidrSet, classifyAddress, parseCidr, validateCidr, type AddressClass } from '../../src/policy/addresses.js';

describe('canonicalIp', () => {
  const table: [input: string, expected: ReturnType<typeof canonicalIp>, why: string][] = [
    ['127.0.0.1', { family: 4, address: '127.0.0.1' }, 'dotted quad'],
    ['127.1', { family: 4, address: '127.0.0.1' }, 'inet_aton a.b: last part fills 3 bytes'],
    ['127.0.1', { family: 4, address: '127.0.0.1' }, 'inet_aton a.b.c: last part fills 2 bytes'],
    ['0x7f.1', { family: 4, address: '127.0.0.1' }, 'hex part'],
    ['0X7F.0.0.1', { family: 4, address: '127.0.0.1' }, 'upper-case hex prefix'],
    ['0x7f000001', { family: 4, address: '127.0.0.1' }, 'single hex number'],
    ['017700000001', { family: 4, address: '127.0.0.1' }, 'single octal number'],
    ['2130706433', { family: 4, address: '127.0.0.1' }, 'single decimal number'],
    ['0177.0.0.1', { family: 4, address: '127.0.0.1' }, 'octal part'],
    ['2852039166', { family: 4, address: '169.254.169.254' }, 'metadata address in decimal'],
    ['0xa9.0xfe.0xa9.0xfe', { family: 4, address: '169.254.169.254' }, 'metadata address in hex parts'],
    ['0', { family: 4, address: '0.0.0.0' }, 'zero'],
    ['256.1.1.1', null, 'part over 255'],
    ['1.2.3.256', null, 'last part over its byte'],
    ['1.2.65536', null, 'last part over its 2 bytes'],
    ['4294967296', null, 'over 32 bits'],
    ['08.1.1.1', null, 'invalid octal'],
    ['1.2.3.4.5', null, 'five parts'],
    ['1..2.3', null, 'empty part'],
    ['1.2.3.4.example.com', null, 'a name, not an IP'],
    ['example.com', null, 'a name'],
    ['', null, 'empty'],
    ['::1', { family: 6, address: '::1' }, 'IPv6 loopback'],
    ['[::1]', { family: 6, address: '::1' }, 'brackets allowed'],
    ['2001:DB8:0:0:0:0:0:1', { family: 6, address: '2001:db8::1' }, 'lower case, compressed'],
    ['2001:db8:0:0:1:0:0:1', { family: 6, address: '2001:db8::1:0:0:1' }, 'RFC 5952: first of equal runs'],
    ['2001:db8:0:1:0:0:0:1', { family: 6, address: '2001:db8:0:1::1' }, 'RFC 5952: longest run'],
    ['2001:db8:0:1:1:1:1:1', { family: 6, address: '2001:db8:0:1:1:1:1:1' }, 'RFC 5952: a single zero group is not compressed'],
    ['2001:0db8::0001', { family: 6, address: '2001:db8::1' }, 'leading zeros dropped'],
    ['::ffff:127.0.0.1', { family: 6, address: '::ffff:7f00:1' }, 'mapped, written in hex like the URL parser'],
    ['::', { family: 6, address: '::' }, 'unspecified'],
    ['fe80::1%eth0', null, 'zone id refused'],
    ['[fe80::1%eth0]', null, 'zone id refused in brackets'],
    ['2001:db8::1::2', null, 'two ::'],
    ['[1.2.3.4]', null, 'IPv4 in brackets'],
    ['::ffff:1.2.3.256', null, 'bad embedded IPv4'],
  ];
  it.each(table)('%j -> %j (%s)', (input, expected) => {
    expect(canonicalIp(input)).toEqual(expected);
  });
});

describe('classifyAddress', () => {
  const table: [address: string, expected: AddressClass, why: string][] = [
    ['8.8.8.8', 'public', 'public resolver'],
    ['1.1.1.1', 'public', 'public'],
    ['0.0.0.0', 'unspecified', 'reaches localhost on Linux'],
    ['0.1.2.3', 'unspecified', '"this network" 0/8'],
    ['127.0.0.1', 'loopback', 'loopback'],
    ['127.255.255.254', 'loopback', 'all of 127/8'],
    ['10.0.0.1', 'private', 'RFC 1918'],
    ['172.16.0.1', 'private', 'RFC 1918 172.16/12 low end'],
    ['172.31.255.255', 'private', 'RFC 1918 172.16/12 high end'],
    ['172.32.0.1', 'public', 'just outside 172.16/12'],
    ['192.168.1.1', 'private', 'RFC 1918'],
    ['169.254.169.254', 'link_local', 'cloud metadata'],
    ['2852039166', 'link_local', 'cloud metadata as a decimal number'],
    ['0xa9fea9fe', 'link_local', 'cloud metadata as a hex number'],
    ['169.254.0.1', 'link_local', 'link-local'],
    ['100.64.0.1', 'cgnat', 'RFC 6598'],
    ['100.127.255.255', 'cgnat', 'RFC 6598 high end'],
    ['100.128.0.1', 'public', 'just outside 100.64/10'],
    ['224.0.0.1', 'multicast', '224/4'],
    ['239.255.255.250', 'multicast', 'SSDP'],
    ['240.0.0.1', 'reserved', 'class E'],
    ['255.255.255.255', 'broadcast', 'limited broadcast'],
    ['192.0.0.8', 'reserved', 'IETF protocol assignments'],
    ['192.0.2.1', 'reserved', 'TEST-NET-1'],
    ['198.51.100.1', 'reserved', 'TEST-NET-2'],
    ['203.0.113.1', 'reserved', 'TEST-NET-3'],
    ['198.18.0.1', 'reserved', 'benchmarking'],
    ['198.19.255.255', 'reserved', 'benchmarking high end'],
    ['198.20.0.1', 'public', 'just outside 198.18/15'],
    ['192.88.99.1', 'reserved', '6to4 relay anycast'],
    ['127.1', 'loopback', 'inet_aton short form'],
    ['0x7f.1', 'loopback', 'inet_aton hex'],
    ['017700000001', 'loopback', 'inet_aton octal number'],
    ['::1', 'loopback', 'IPv6 loopback'],
    ['[::1]', 'loopback', 'IPv6 loopback in brackets'],
    ['::', 'unspecified', 'IPv6 unspecified'],
    ['fc00::1', 'private', 'ULA'],
    ['fd00:ec2::254', 'private', 'AWS metadata over IPv6 is ULA'],
    ['fe80::1', 'link_local', 'link-local'],
    ['febf::1', 'link_local', 'end of fe80::/10'],
    ['fec0::1', 'private', 'site-local'],
    ['ff02::1', 'multicast', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'loopback', 'IPv4-mapped loopback in hex'],
    ['::ffff:169.254.169.254', 'link_local', 'IPv4-mapped metadata'],
    ['::ffff:10.0.0.1', 'private', 'IPv4-mapped private'],
    ['::ffff:8.8.8.8', 'public', 'IPv4-mapped public'],
    ['::ffff:0:127.0.0.1', 'loopback', 'IPv4-translated (SIIT)'],
    ['::127.0.0.1', 'loopback', 'IPv4-compatible'],
    ['::10.0.0.1', 'private', 'IPv4-compatible private'],
    ['64:ff9b::169.254.169.254', 'link_local', 'NAT64 to metadata'],
    ['64:ff9b::a9fe:a9fe', 'link_local', 'NAT64 to metadata in hex'],
    ['64:ff9b::8.8.8.8', 'public', 'NAT64 to a public address'],
    ['64:ff9b:1::1', 'reserved', 'local-use NAT64'],
    ['2002:7f00:1::', 'loopback', '6to4 of 127.0.0.1'],
    ['2002:a9fe:a9fe::1', 'link_local', '6to4 of the metadata address'],
    ['2002:808:808::1', 'public', '6to4 of a public address'],
    ['2001:db8::1', 'reserved', 'documentation'],
    ['2001::1', 'reserved', 'Teredo'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved', 'Teredo, a real-looking one'],
    ['100::1', 'reserved', 'discard-only'],
    ['4000::1', 'reserved', 'outside 2000::/3, unallocated'],
    ['2606:4700:4700::1111', 'public', 'public IPv6'],
    ['2a00:1450:4001::200e', 'public', 'public IPv6'],
    ['not-an-ip', 'reserved', 'garbage fails closed'],
  ];
  it.each(table)('%s -> %s (%s)', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });
});

describe('parseCidr / validateCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['192.168.1.5', '192.168.1.5/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00::/8', 'fd00::/8'],
    ['FD00:0:0::/16', 'fd00::/16'],
    ['::1', '::1/128'],
  ])('%s is valid as %s', (input, text) => {
    expect(validateCidr(input)).toBeNull();
    expect(parseCidr(input).text).toBe(text);
  });

  it.each([
    ['10.0.0.1/8', '"10.0.0.1/8": host bits are set after the /8 prefix (did you mean 10.0.0.0/8?)', 'typo guard'],
    ['10/8', '"10/8": not a valid IPv4 address (use a dotted quad such as 10.0.0.0)', 'inet_aton would read 0.0.0.10'],
    ['10.0.0.0/33', '"10.0.0.0/33": prefix length must be 0-32', 'prefix too long'],
    ['fd00::/129', '"fd00::/129": prefix length must be 0-128', 'prefix too long'],
    ['10.0.0.0/x', '"10.0.0.0/x": prefix length must be 0-32', 'not a number'],
    ['10.0.0.0/8/8', '"10.0.0.0/8/8": expected a CIDR such as "10.0.0.0/8"', 'two slashes'],
    ['', '"": expected a CIDR such as "10.0.0.0/8"', 'empty'],
    ['fd00::zz/8', '"fd00::zz/8": not a valid IPv6 address', 'bad IPv6'],
    ['fd00::1/8', '"fd00::1/8": host bits are set after the /8 prefix (did you mean fd00::/8?)', 'IPv6 typo guard'],
  ])('%j is invalid (%s)', (input, message) => {
    expect(validateCidr(input)).toBe(message);
    expect(() => parseCidr(input)).toThrow(message);
    expect(() => new CidrSet([input])).toThrow(message);
  });
});

describe('CidrSet', () => {
  const set = new CidrSet(['10.0.0.0/8', '192.168.1.0/24', 'fd00::/8', '::ffff:172.16.0.0/108', '169.254.169.254']);
  const table: [address: string, expected: boolean, why: string][] = [
    ['10.1.2.3', true, 'inside a v4 CIDR'],
    ['11.0.0.1', false, 'outside'],
    ['192.168.1.200', true, '/24'],
    ['192.168.2.1', false, 'next /24'],
    ['::ffff:10.1.2.3', true, 'IPv4-mapped checked against v4 CIDRs'],
    ['::ffff:a01:203', true, 'IPv4-mapped in hex'],
    ['::ffff:11.0.0.1', false, 'IPv4-mapped outside'],
    ['fd12::1', true, 'inside a v6 CIDR'],
    ['fe80::1', false, 'outside the v6 CIDR'],
    ['172.16.5.5', true, 'v4 address against a v6 CIDR in mapped form'],
    ['172.32.0.1', false, 'outside the mapped v6 CIDR'],
    ['169.254.169.254', true, 'single-host entry'],
    ['169.254.169.253', false, 'neighbour of a single-host entry'],
    ['0xa.0x10203', true, 'any inet_aton spelling of 10.1.2.3'],
    ['not-an-ip', false, 'garbage is never exempt'],
  ];
  it.each(table)('%s -> %s (%s)', (address, expected) => {
    expect(set.contains(address)).toBe(expected);
  });

  it('an empty set contains nothing', () => {
    expect(new CidrSet([]).contains('10.0.0.1')).toBe(false);
  });
});

describe('checkAddress', () => {
  const exempt = new CidrSet(['10.20.0.0/16']);
  const table: [address: string, expected: { blocked: boolean; class: AddressClass }, why: string][] = [
    ['8.8.8.8', { blocked: false, class: 'public' }, 'public passes'],
    ['10.20.3.4', { blocked: false, class: 'private' }, 'private but exempt'],
    ['::ffff:10.20.3.4', { blocked: false, class: 'private' }, 'mapped form of an exempt address'],
    ['10.21.0.1', { blocked: true, class: 'private' }, 'private, not exempt'],
    ['169.254.169.254', { blocked: true, class: 'link_local' }, 'metadata'],
    ['::ffff:169.254.169.254', { blocked: true, class: 'link_local' }, 'mapped metadata'],
    ['127.0.0.1', { blocked: true, class: 'loopback' }, 'loopback'],
    ['2001:db8::1', { blocked: true, class: 'reserved' }, 'documentation'],
  ];
  it.each(table)('%s (%s)', (address, expected) => {
    expect(checkAddress(address, exempt)).toEqual(expected);
  });
});
