// Identity under attack: credentials that are malformed, empty, huge, duplicated, or valid for
// another environment; and a revocation that must reach sockets already open.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseResponseHead, rawExchange } from '../helpers/raw.js';
import { addSession } from '../helpers/sessions.js';
import { expectHealthy, rawClient, startBench, statusLines, type Bench } from './harness.js';

let bench: Bench;
let P = 0;

beforeAll(async () => {
  bench = await startBench();
  P = bench.upstream.port;
});
afterAll(async () => {
  await bench?.stop();
});
afterEach(async () => {
  await expectHealthy(bench);
});

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

describe('malformed credentials are 407 auth_invalid, never the default environment', () => {
  // [what, header built from the app session's id and token]
  const headers: [string, (id: string, token: string) => string][] = [
    ['not base64', (id, token) => 'Proxy-Authorization: Basic !!!!'],
    ['no credentials after the scheme', (id, token) => 'Proxy-Authorization: Basic'],
    ['another scheme', (id, token) => `Proxy-Authorization: Bearer ${token}`],
    ['no colon', (id, token) => `Proxy-Authorization: Basic ${b64(id + token)}`],
    ['empty user', (id, token) => `Proxy-Authorization: Basic ${b64(`:${token}`)}`],
    ['empty token', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:`)}`],
    ['empty user and token', (id, token) => `Proxy-Authorization: Basic ${b64(':')}`],
    ['right id, wrong token', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:${token}x`)}`],
    ['right token, wrong id', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}x:${token}`)}`],
    ['token prefix only', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:${token.slice(0, 8)}`)}`],
    ['NUL in the token', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:${token}\0`)}`],
    ['NUL splitting id and junk', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}\0junk:${token}`)}`],
    ['invalid UTF-8', (id, token) => `Proxy-Authorization: Basic ${b64(Buffer.concat([Buffer.from(`${id}:`), Buffer.from([0xff, 0xfe]), Buffer.from(token)]))}`],
    ['very long credentials (8 KiB)', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:${'x'.repeat(6_000)}`)}`],
    ['very long user (4 KiB)', (id, token) => `Proxy-Authorization: Basic ${b64(`${'u'.repeat(3_000)}:${token}`)}`],
    ['base64 with junk after padding', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:${token}`)}==x`],
    ['bypass: two Proxy-Authorization headers, the second valid', (id, token) => `Proxy-Authorization: Basic ${b64('a:b')}\r\nProxy-Authorization: Basic ${b64(`${id}:${token}`)}`],
    ['bypass: two Proxy-Authorization headers, both valid (Node kept the first)', (id, token) => `Proxy-Authorization: Basic ${b64(`${id}:${token}`)}\r\nProxy-Authorization: Basic ${b64(`${id}:${token}`)}`],
  ];

  it.each(headers)('%s (CONNECT)', async (_what, build) => {
    const header = build(bench.sessions.app.id, bench.sessions.app.token);
    const response = parseResponseHead(await rawExchange(bench.gate.proxyPort, `CONNECT allowed.test:${P} HTTP/1.1\r\n${header}\r\n\r\n`));
    expect(response.status).toBe(407);
    expect(response.headers['x-deny-reason']).toBe('auth_invalid');
    expect(response.headers['proxy-authenticate']).toBe('Basic realm="egress-gate"');
  });

  it.each(headers)('%s (plain HTTP)', async (_what, build) => {
    const header = build(bench.sessions.app.id, bench.sessions.app.token);
    const before = bench.upstream.seen.length;
    const response = parseResponseHead(await rawExchange(bench.gate.proxyPort, `GET http://allowed.test:${P}/ HTTP/1.1\r\nHost: allowed.test:${P}\r\n${header}\r\n\r\n`));
    expect(response.status).toBe(407);
    expect(response.headers['x-deny-reason']).toBe('auth_invalid');
    expect(bench.upstream.seen.length).toBe(before);
  });

  it('no secret from a refused credential reaches the logs', () => {
    const { token } = bench.sessions.app;
    const leaked = bench.gate.logs.filter((line) => line.includes(token) || line.includes(b64(`${bench.sessions.app.id}:${token}`)));
    expect(leaked).toEqual([]);
  });
});

describe('a session is confined to its own environment', () => {
  it.each(['allowed.test', 'api.example.com'])('a session of "other" probing app\'s host %s is refused', async (host) => {
    const before = bench.upstream.seen.length;
    const connect = parseResponseHead(await rawExchange(bench.gate.proxyPort, `CONNECT ${host}:${P} HTTP/1.1\r\n${bench.auth('other')}\r\n\r\n`));
    expect([connect.status, connect.headers['x-deny-reason']]).toEqual([403, 'host_not_allowed']);
    const get = parseResponseHead(await rawExchange(bench.gate.proxyPort, `GET http://${host}:${P}/ HTTP/1.1\r\nHost: ${host}:${P}\r\n${bench.auth('other')}\r\nConnection: close\r\n\r\n`));
    expect([get.status, get.headers['x-deny-reason']]).toEqual([403, 'host_not_allowed']);
    expect(connect.body).toContain('environment "other"');
    expect(bench.upstream.seen.length).toBe(before);
  });

  it('and reaches its own', async () => {
    const get = parseResponseHead(await rawExchange(bench.gate.proxyPort, `GET http://other.test:${P}/ HTTP/1.1\r\nHost: other.test:${P}\r\n${bench.auth('other')}\r\nConnection: close\r\n\r\n`));
    expect(get.status).toBe(200);
  });
});

describe('revocation reaches open sockets', () => {
  it('a revoked token on a kept-alive socket gets 407 on its next request', async () => {
    const session = await addSession(bench.gate, 'app');
    const auth = `Proxy-Authorization: Basic ${b64(`${session.id}:${session.token}`)}`;
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/before-revoke HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 1);
      await bench.gate.runtime.store.deleteSession(session.id);
      client.write(`GET http://allowed.test:${P}/after-revoke HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 2);
      expect(statusLines(client.text())).toEqual([200, 407]);
      expect(client.text()).toContain('X-Deny-Reason: auth_invalid');
      expect(bench.upstream.seen.some((s) => s.url === '/after-revoke')).toBe(false);
      await client.closedWithin(2_000);
    } finally {
      client.destroy();
    }
  });

  it('an open tunnel of a revoked session is closed within a second', async () => {
    const session = await addSession(bench.gate, 'app');
    const auth = `Proxy-Authorization: Basic ${b64(`${session.id}:${session.token}`)}`;
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`CONNECT allowed.test:${P} HTTP/1.1\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
      client.write(`GET /in-tunnel HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
      await client.waitFor((t) => t.includes('"url":"/in-tunnel"'));
      const revoked = bench.gate.runtime.store.deleteSession(session.id);
      const closedAfter = await client.closedWithin(1_000);
      await revoked;
      expect(closedAfter).toBeLessThan(1_000);
    } finally {
      client.destroy();
    }
  });

  it('an in-flight request of a revoked session is cut', async () => {
    const session = await addSession(bench.gate, 'app');
    const auth = `Proxy-Authorization: Basic ${b64(`${session.id}:${session.token}`)}`;
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.socket.pause();
      client.write(`GET http://allowed.test:${P}/bytes/50000000 HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      client.socket.resume();
      await client.waitFor((t) => t.length > 1_000);
      await bench.gate.runtime.store.deleteSession(session.id);
      await client.closedWithin(1_000);
      expect(client.text().length).toBeLessThan(50_000_000);
    } finally {
      client.destroy();
    }
  });
});
