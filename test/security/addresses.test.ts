// The private-address block against DNS answers: a resolver (the dial seam, never a real DNS
// server) that mixes allowed and private addresses, answers IPv4-mapped forms, fails, hangs or
// changes its answer between requests. On the wire only loopback is reached; the other ranges
// of SPEC §4 are proven through the runtime's `check` without a packet.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAuthority } from '../../src/proxy/target.js';
import { parseResponseHead, rawExchange } from '../helpers/raw.js';
import { expectHealthy, noDns, startBench, type Bench } from './harness.js';

let bench: Bench;
let P = 0;
const answers = new Map<string, string[] | 'fail' | 'hang'>();
const lookups: string[] = [];

beforeAll(async () => {
  bench = await startBench({ config: { upstream: { dnsTimeoutMs: 300 } } });
  P = bench.upstream.port;
  bench.gate.runtime.context.dial.lookup = async (host) => {
    lookups.push(host);
    const answer = answers.get(host);
    if (answer === undefined) return noDns(host);
    if (answer === 'fail') throw Object.assign(new Error('server failure'), { code: 'ESERVFAIL' });
    if (answer === 'hang') return new Promise(() => {});
    return answer.map((address) => ({ address }));
  };
});
afterAll(async () => {
  await bench?.stop();
});
afterEach(async () => {
  expect(bench.decoy.connections, 'the decoy on 127.0.0.2 was reached').toBe(0);
  await expectHealthy(bench);
});

async function both(host: string): Promise<{ connect: ReturnType<typeof parseResponseHead>; get: ReturnType<typeof parseResponseHead> }> {
  const connect = parseResponseHead(await rawExchange(bench.gate.proxyPort, `CONNECT ${host}:${P} HTTP/1.1\r\n${bench.auth('full')}\r\n\r\n`));
  const get = parseResponseHead(await rawExchange(bench.gate.proxyPort, `GET http://${host}:${P}/dns HTTP/1.1\r\nHost: ${host}:${P}\r\n${bench.auth('full')}\r\nConnection: close\r\n\r\n`));
  return { connect, get };
}

describe('DNS answers', () => {
  it('an answer of only the exempt address is served (the seam works)', async () => {
    answers.set('exempt-only.test', ['127.0.0.3']);
    const { connect, get } = await both('exempt-only.test');
    expect([connect.status, get.status]).toEqual([200, 200]);
  });

  it.each([
    ['allowed first', ['127.0.0.3', '127.0.0.2']],
    ['private first', ['127.0.0.2', '127.0.0.3']],
    ['IPv4-mapped private second', ['127.0.0.3', '::ffff:127.0.0.2']],
    ['IPv6 loopback second', ['127.0.0.3', '::1']],
    ['metadata address second', ['127.0.0.3', '169.254.169.254']],
    ['unspecified second', ['127.0.0.3', '0.0.0.0']],
  ])('an answer mixing allowed and private addresses is refused whole (%s)', async (_what, addresses) => {
    const host = `mixed-${lookups.length}.test`;
    answers.set(host, addresses);
    const { connect, get } = await both(host);
    for (const response of [connect, get]) {
      expect([response.status, response.headers['x-deny-reason']]).toEqual([403, 'private_address']);
    }
    expect(bench.upstream.seen.some((s) => s.url === '/dns' && s.headers.host === `${host}:${P}`)).toBe(false);
  });

  it.each([
    ['the resolver fails', 'fail' as const],
    ['the answer is empty', [] as string[]],
    ['no such name', undefined],
  ])('%s → 502 dns_failure', async (_what, answer) => {
    const host = `broken-${lookups.length}.test`;
    if (answer !== undefined) answers.set(host, answer);
    const { connect, get } = await both(host);
    for (const response of [connect, get]) expect([response.status, response.headers['x-deny-reason']]).toEqual([502, 'dns_failure']);
    expect(connect.body).toContain('failed at egress-gate');
  });

  it('a resolver that never answers → 502 dns_failure after upstream.dnsTimeoutMs', async () => {
    answers.set('hangs.test', 'hang');
    const started = performance.now();
    const { connect, get } = await both('hangs.test');
    for (const response of [connect, get]) expect([response.status, response.headers['x-deny-reason']]).toEqual([502, 'dns_failure']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * 290);
  });

  it('DNS rebinding: one lookup per request, and the checked address is the one dialled', async () => {
    answers.set('rebind.test', ['127.0.0.3']);
    const before = lookups.filter((h) => h === 'rebind.test').length;
    const first = parseResponseHead(await rawExchange(bench.gate.proxyPort, `GET http://rebind.test:${P}/rebind-1 HTTP/1.1\r\nHost: rebind.test:${P}\r\n${bench.auth('full')}\r\nConnection: close\r\n\r\n`));
    expect(first.status).toBe(200);
    expect(lookups.filter((h) => h === 'rebind.test').length - before).toBe(1);
    // The attacker's DNS now points the same name inward.
    answers.set('rebind.test', ['127.0.0.2']);
    const second = parseResponseHead(await rawExchange(bench.gate.proxyPort, `GET http://rebind.test:${bench.decoy.port}/rebind-2 HTTP/1.1\r\nHost: rebind.test:${bench.decoy.port}\r\n${bench.auth('full')}\r\nConnection: close\r\n\r\n`));
    expect([second.status, second.headers['x-deny-reason']]).toEqual([403, 'private_address']);
    expect(bench.decoy.seen).toEqual([]);
  });

  it('a name pinned in upstream.resolve is never looked up', async () => {
    const before = lookups.length;
    await both('allowed.test');
    expect(lookups.length).toBe(before);
  });
});

describe('every range of SPEC §4, through check (no packet sent)', () => {
  const ranges: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.0.1', 'private'],
    ['fd00::1', 'private'],
    ['169.254.169.254', 'link_local'],
    ['2852039166', 'link_local'],
    ['0xa9.0xfe.0xa9.0xfe', 'link_local'],
    ['fe80::1', 'link_local'],
    ['100.64.0.1', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:169.254.169.254', 'link_local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link_local'],
  ];
  it.each(ranges)('full: %s → private_address (%s)', (host, kind) => {
    // The parser the wire uses, then the runtime's check (what `egress-gate check` and /v1/check run).
    const parsed = parseAuthority(host.includes(':') ? `[${host}]:443` : `${host}:443`);
    if (!parsed.ok) throw new Error(parsed.why);
    const decision = bench.gate.runtime.check('full', parsed.target);
    expect(decision?.allow).toBe(false);
    expect(decision?.reason).toBe('private_address');
    expect(decision?.rule).toContain(kind);
  });

  it('the exempt address alone passes', () => {
    expect(bench.gate.runtime.check('full', { host: '127.0.0.3', port: 443 })?.allow).toBe(true);
  });
});
