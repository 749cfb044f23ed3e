// Request smuggling and framing: ambiguous message boundaries are refused whole, never guessed,
// and each request on a kept-alive connection is admitted on its own. The upstream records
// every request it parsed, so "the smuggled request never arrived" is checked, not assumed.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseResponseHead, rawExchange } from '../helpers/raw.js';
import { expectHealthy, rawClient, startBench, statusLines, type Bench } from './harness.js';

let bench: Bench;
let P = 0;
let auth = '';

beforeAll(async () => {
  bench = await startBench();
  P = bench.upstream.port;
  auth = bench.auth('app');
});
afterAll(async () => {
  await bench?.stop();
});
afterEach(async () => {
  expect(bench.decoy.connections, 'the decoy on 127.0.0.2 was reached').toBe(0);
  await expectHealthy(bench);
});

const smuggledPaths = (): string[] => bench.upstream.seen.map((s) => s.url).filter((url) => url.includes('smuggled'));

/** A request line and headers for allowed.test, then `rest` verbatim (CRLF unless the case says otherwise). */
function head(method: string, path: string, headers: string[]): string {
  return [`${method} http://allowed.test:${P}${path} HTTP/1.1`, `Host: allowed.test:${P}`, auth, ...headers].join('\r\n');
}

const smuggled = (): string => `GET http://allowed.test:${P}/smuggled HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`;

describe('ambiguous framing is refused with 400 and nothing reaches the upstream', () => {
  const cases: [string, () => string][] = [
    ['Content-Length with Transfer-Encoding (CL.TE)', () => `${head('POST', '/cl-te', ['Content-Length: 4', 'Transfer-Encoding: chunked'])}\r\n\r\n0\r\n\r\n${smuggled()}`],
    ['Transfer-Encoding with Content-Length (TE.CL)', () => `${head('POST', '/te-cl', ['Transfer-Encoding: chunked', 'Content-Length: 60'])}\r\n\r\n0\r\n\r\n${smuggled()}`],
    ['duplicate Content-Length, different values', () => `${head('POST', '/dup-cl', ['Content-Length: 0', 'Content-Length: 60'])}\r\n\r\n${smuggled()}`],
    ['Content-Length list', () => `${head('POST', '/cl-list', ['Content-Length: 0, 60'])}\r\n\r\n${smuggled()}`],
    ['negative Content-Length', () => `${head('POST', '/neg-cl', ['Content-Length: -1'])}\r\n\r\n${smuggled()}`],
    ['Content-Length with a sign', () => `${head('POST', '/plus-cl', ['Content-Length: +4'])}\r\n\r\nabcd`],
    ['Content-Length in hex', () => `${head('POST', '/hex-cl', ['Content-Length: 0x4'])}\r\n\r\nabcd`],
    ['Transfer-Encoding that does not end in chunked', () => `${head('POST', '/te-gzip', ['Transfer-Encoding: chunked, gzip'])}\r\n\r\n0\r\n\r\n${smuggled()}`],
    ['obfuscated Transfer-Encoding (space before colon)', () => `${head('POST', '/te-space', ['Transfer-Encoding : chunked', 'Content-Length: 4'])}\r\n\r\n0\r\n\r\n${smuggled()}`],
    ['obs-fold continuation line', () => `${head('GET', '/obs-fold', ['X-Folded: a', ' b'])}\r\n\r\n`],
    ['obs-fold hiding Transfer-Encoding', () => `${head('POST', '/obs-fold-te', ['Content-Length: 4', 'X-Folded: a', ' Transfer-Encoding: chunked'])}\r\n\r\n0\r\n\r\n${smuggled()}`],
    ['bare LF line endings', () => `GET http://allowed.test:${P}/bare-lf HTTP/1.1\nHost: allowed.test:${P}\n${auth}\n\n`],
    ['bare LF inside the header block', () => `${head('GET', '/bare-lf-mixed', ['X-A: 1\nX-B: 2'])}\r\n\r\n`],
    ['bare CR', () => `${head('GET', '/bare-cr', ['X-A: 1\rX-B: 2'])}\r\n\r\n`],
    ['NUL in a header value', () => `${head('GET', '/nul-value', ['X-A: a\0b'])}\r\n\r\n`],
    ['space in a header name', () => `${head('GET', '/space-name', ['X A: b'])}\r\n\r\n`],
    ['non-token byte in a header name', () => `${head('GET', '/bad-name', ['X(A): b'])}\r\n\r\n`],
    ['chunk size overflow', () => `${head('POST', '/chunk-overflow', ['Transfer-Encoding: chunked'])}\r\n\r\nffffffffffffffffff\r\n`],
    ['HTTP/1.2 version', () => `GET http://allowed.test:${P}/v12 HTTP/1.2\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`],
  ];

  it.each(cases)('%s', async (_what, bytes) => {
    const before = bench.upstream.seen.length;
    const raw = await rawExchange(bench.gate.proxyPort, bytes());
    const response = parseResponseHead(raw);
    expect(response.status, raw.slice(0, 200)).toBe(400);
    expect(response.headers['x-deny-reason']).toBe('bad_request');
    // Exactly one answer: the bytes after the refused head were not read as a second request.
    expect(statusLines(raw)).toEqual([400]);
    expect(bench.upstream.seen.length).toBe(before);
    expect(smuggledPaths()).toEqual([]);
  });
});

describe('the destination is the URI, never the Host header', () => {
  // Regression: the 421 was sent, and the request pipelined behind it was forwarded anyway.
  it('bypass: a request pipelined behind a 421 is dropped, not forwarded', async () => {
    const before = bench.upstream.seen.length;
    const raw = await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/mis HTTP/1.1\r\nHost: evil.test:${P}\r\n${auth}\r\n\r\n${smuggled()}`);
    expect(statusLines(raw)).toEqual([421]);
    expect(parseResponseHead(raw).headers['x-deny-reason']).toBe('misdirected');
    expect(bench.upstream.seen.length).toBe(before);
  });

  it('bypass: a request pipelined behind a 407 auth_invalid is dropped, not forwarded', async () => {
    const before = bench.upstream.seen.length;
    const raw = await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/bad-auth HTTP/1.1\r\nHost: allowed.test:${P}\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n${smuggled()}`);
    expect(statusLines(raw)).toEqual([407]);
    expect(bench.upstream.seen.length).toBe(before);
    expect(smuggledPaths()).toEqual([]);
  });

  it('same host, other port → 421', async () => {
    const raw = await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/mis HTTP/1.1\r\nHost: allowed.test:${P + 1}\r\n${auth}\r\nConnection: close\r\n\r\n`);
    expect(statusLines(raw)).toEqual([421]);
  });

  it('bypass: two Host headers (the second naming another host) → 400', async () => {
    const raw = await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/two-hosts HTTP/1.1\r\nHost: allowed.test:${P}\r\nHost: evil.test:${P}\r\n${auth}\r\nConnection: close\r\n\r\n`);
    expect(statusLines(raw)).toEqual([400]);
    expect(bench.upstream.seen.some((s) => s.url === '/two-hosts')).toBe(false);
  });

  it('no Host header: the URI decides, and the upstream gets a Host naming exactly the checked target', async () => {
    const raw = await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/no-host HTTP/1.1\r\n${auth}\r\nConnection: close\r\n\r\n`);
    expect(statusLines(raw)).toEqual([200]);
    const seen = bench.upstream.seen.find((s) => s.url === '/no-host');
    expect(seen?.rawHeaders.filter((_, i, all) => i % 2 === 0 && all[i]?.toLowerCase() === 'host')).toHaveLength(1);
    expect(seen?.headers.host).toBe(`allowed.test:${P}`);
  });

  it('Proxy-Authorization and hop-by-hop headers named in Connection never reach the upstream', async () => {
    await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/hop HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nProxy-Connection: keep-alive\r\n\r\n`);
    const seen = bench.upstream.seen.find((s) => s.url === '/hop');
    expect(seen).toBeDefined();
    expect(Object.keys(seen!.headers).filter((h) => /^proxy-|^x-secret-hop$/.test(h))).toEqual([]);
  });
});

describe('pipelining and keep-alive', () => {
  it('a pipelined second request to a refused host is refused and never reaches any upstream', async () => {
    const before = bench.upstream.seen.length;
    const raw = await rawExchange(
      bench.gate.proxyPort,
      `GET http://allowed.test:${P}/first HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n` +
        `GET http://evil.test:${bench.decoy.port}/smuggled HTTP/1.1\r\nHost: evil.test:${bench.decoy.port}\r\n${auth}\r\nConnection: close\r\n\r\n`,
      { waitMs: 1_000 },
    );
    expect(statusLines(raw)).toEqual([200, 403]);
    expect(raw).toContain('X-Deny-Reason: host_not_allowed');
    expect(bench.upstream.seen.slice(before).map((s) => s.url)).toEqual(['/first']);
    expect(bench.decoy.seen).toEqual([]);
  });

  // Regression: each round leaked a registry entry and a connection slot of the session.
  it('bypass: pipelining then hanging up no longer leaks connection slots until the session is locked out', async () => {
    for (let round = 0; round < 3; round++) {
      const client = await rawClient(bench.gate.proxyPort);
      client.write(
        `GET http://allowed.test:${P}/bytes/20000000 HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n` +
          `GET http://api.example.com:${P}/queued HTTP/1.1\r\nHost: api.example.com:${P}\r\n${auth}\r\n\r\n`,
      );
      await client.waitFor((t) => t.length > 100_000);
      client.destroy();
    }
  });

  it('a pipelined body carrying a request is a body, not a request', async () => {
    const inner = `GET http://evil.test:${bench.decoy.port}/smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n`;
    const raw = await rawExchange(
      bench.gate.proxyPort,
      `POST http://allowed.test:${P}/carrier HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\nContent-Length: ${inner.length}\r\nConnection: close\r\n\r\n${inner}`,
      { waitMs: 1_000 },
    );
    expect(statusLines(raw)).toEqual([200]);
    const carrier = bench.upstream.seen.find((s) => s.url === '/carrier');
    expect(carrier?.bodyBytes).toBe(inner.length);
    expect(smuggledPaths()).toEqual([]);
  });

  it('a keep-alive connection that switches host is checked at every request', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/k1 HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 1);
      client.write(`GET http://api.example.com:${P}/k2 HTTP/1.1\r\nHost: api.example.com:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 2);
      client.write(`GET http://other.test:${P}/smuggled-k3 HTTP/1.1\r\nHost: other.test:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 3);
      client.write(`GET http://allowed.test:${P}/k4 HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\nConnection: close\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 4);
      expect(statusLines(client.text())).toEqual([200, 200, 403, 200]);
      const hosts = bench.upstream.seen.filter((s) => /^\/k\d$/.test(s.url)).map((s) => `${s.url} ${s.headers.host}`);
      expect(hosts).toEqual([`/k1 allowed.test:${P}`, `/k2 api.example.com:${P}`, `/k4 allowed.test:${P}`]);
      await client.closedWithin(2_000);
    } finally {
      client.destroy();
    }
  });

  it('a keep-alive connection that switches identity is checked at every request', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/id1 HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 1);
      // Same socket, the other environment's credentials: its policy, not the first request's.
      client.write(`GET http://allowed.test:${P}/smuggled-id2 HTTP/1.1\r\nHost: allowed.test:${P}\r\n${bench.auth('other')}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 2);
      // And without credentials at all: auth.required, so no inheritance from earlier requests.
      client.write(`GET http://allowed.test:${P}/smuggled-id3 HTTP/1.1\r\nHost: allowed.test:${P}\r\nConnection: close\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 3);
      expect(statusLines(client.text())).toEqual([200, 403, 407]);
      expect(smuggledPaths()).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});
