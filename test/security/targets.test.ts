// Request-target parsing under attack: every spelling of a host that could mean one thing to
// the policy and another to the resolver or the upstream, sent as raw bytes (a client library
// would refuse or rewrite most of them). CONNECT and the absolute-URI form of plain HTTP agree.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseResponseHead, rawExchange } from '../helpers/raw.js';
import { expectHealthy, rawClient, startBench, type Bench } from './harness.js';

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
  expect(bench.decoy.connections, 'the decoy on 127.0.0.2 was reached').toBe(0);
  await expectHealthy(bench);
});

type Env = 'app' | 'full';
// [what, authority (P = the upstream port), environment, expected status, expected reason]
const cases = (): [string, string, Env, number, string, 'connect'?][] => [
  ['no port', 'allowed.test', 'app', 400, 'bad_request'],
  ['port 0', 'allowed.test:0', 'app', 400, 'bad_request'],
  ['port 65536', 'allowed.test:65536', 'app', 400, 'bad_request'],
  ['port with sign', `allowed.test:+{P}`, 'app', 400, 'bad_request'],
  ['port in hex', `allowed.test:0x1bb`, 'app', 400, 'bad_request'],
  ['userinfo', `user@allowed.test:{P}`, 'app', 400, 'bad_request'],
  ['userinfo naming the allowed host', `allowed.test@evil.test:{P}`, 'app', 400, 'bad_request'],
  ['percent-encoded dot', `allowed%2etest:{P}`, 'app', 400, 'bad_request'],
  ['backslash', `allowed.test\\@evil.test:{P}`, 'app', 400, 'bad_request'],
  ['slash', `evil.test/allowed.test:{P}`, 'app', 400, 'bad_request', 'connect'],
  ['empty label', `allowed..test:{P}`, 'app', 400, 'bad_request'],
  ['two trailing dots', `allowed.test..:{P}`, 'app', 400, 'bad_request'],
  ['name over 253 bytes', `${'a.'.repeat(126)}allowed.test:{P}`, 'full', 400, 'bad_request'],
  ['label over 63 bytes', `${'a'.repeat(64)}.allowed.test:{P}`, 'full', 400, 'bad_request'],
  // Request targets are ASCII (RFC 9112 §3.2, RFC 3986): raw UTF-8 never reaches the matcher, and
  // the punycode a client must send for a homograph is another name than the one allowed.
  ['Cyrillic homograph of api.example.com in UTF-8', `\u0430pi.example.com:{P}`, 'app', 400, 'bad_request'],
  ['IDN in UTF-8 rather than punycode', `b\u00fccher.example:{P}`, 'app', 400, 'bad_request'],
  ['punycode of the homograph', `xn--pi-7kc.example.com:{P}`, 'app', 403, 'host_not_allowed'],
  ['IPv6 loopback', `[::1]:{P}`, 'full', 403, 'private_address'],
  ['IPv4-mapped IPv6 loopback', `[::ffff:127.0.0.2]:{P}`, 'full', 403, 'private_address'],
  ['IPv4-mapped in hex', `[::ffff:7f00:2]:{P}`, 'full', 403, 'private_address'],
  ['unbracketed IPv6', `::1:{P}`, 'full', 400, 'bad_request'],
  ['IPv6 zone id', `[fe80::1%25lo]:{P}`, 'full', 400, 'bad_request'],
  ['unterminated IPv6', `[::1:{P}`, 'full', 400, 'bad_request'],
  ['inet_aton short form', `127.1:{P}`, 'full', 403, 'private_address'],
  ['inet_aton hex', `0x7f.1:{P}`, 'full', 403, 'private_address'],
  ['inet_aton octal number', `017700000001:{P}`, 'full', 403, 'private_address'],
  ['inet_aton decimal number', `2130706433:{P}`, 'full', 403, 'private_address'],
  ['inet_aton octal dotted', `0177.0.0.2:{P}`, 'full', 403, 'private_address'],
  ['numeric top-level label', `allowed.123:{P}`, 'full', 400, 'bad_request'],
  ['IP literal never matches a domain entry', `127.0.0.3:{P}`, 'app', 403, 'host_not_allowed'],
];

// Bytes a request line cannot carry: the HTTP parser refuses them before any handler runs.
const controlCases = (): [string, string][] => [
  ['NUL inside the name', `allowed.test\0.evil.test:{P}`],
  ['NUL before the port', `allowed.test\0:{P}`],
  ['control byte', `allowed.test\x01:{P}`],
  ['DEL', `allowed.test\x7f:{P}`],
  ['space', `allowed .test:{P}`],
  ['tab', `allowed.test\t:{P}`],
  ['CR inside the target', `allowed.test\r:{P}`],
];

// Spellings that mean exactly the allowed host: they must work, not just be refused less.
const sameHost = (): [string, string][] => [
  ['trailing dot', `allowed.test.:{P}`],
  ['mixed case', `AlLoWeD.TeSt:{P}`],
  ['upper case with trailing dot', `ALLOWED.TEST.:{P}`],
  ['punycode entry', `xn--bcher-kva.example:{P}`],
];

// Test names are built before the upstream has a port: "{P}" stands for it.
const utf8 = (s: string): Buffer => Buffer.from(s.replaceAll('{P}', String(P)), 'utf8');

async function connectRaw(authority: string, env: Env): Promise<ReturnType<typeof parseResponseHead>> {
  const bytes = Buffer.concat([utf8(`CONNECT ${authority} HTTP/1.1\r\n`), utf8(`${bench.auth(env)}\r\n\r\n`)]);
  return parseResponseHead(await rawExchange(bench.gate.proxyPort, bytes));
}

async function getRaw(authority: string, env: Env, host = authority): Promise<ReturnType<typeof parseResponseHead>> {
  const bytes = utf8(`GET http://${authority}/probe HTTP/1.1\r\nHost: ${host}\r\n${bench.auth(env)}\r\nConnection: close\r\n\r\n`);
  return parseResponseHead(await rawExchange(bench.gate.proxyPort, bytes));
}

describe('CONNECT authority', () => {
  it.each(cases())('%s: CONNECT %j → %s %i %s', async (_what, authority, env, status, reason) => {
    const response = await connectRaw(authority, env);
    expect(response.status).toBe(status);
    expect(response.headers['x-deny-reason']).toBe(reason);
  });

  it.each(controlCases())('%s is refused with 400 before parsing: %j', async (_what, authority) => {
    const response = await connectRaw(authority, 'full');
    expect(response.status).toBe(400);
    expect(response.headers['x-deny-reason']).toBe('bad_request');
  });

  it.each(sameHost())('%s: CONNECT %j reaches allowed.test', async (_what, authority) => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(utf8(`CONNECT ${authority} HTTP/1.1\r\n${bench.auth('app')}\r\n\r\n`));
      await client.waitFor((t) => t.includes('\r\n\r\n'));
      expect(parseResponseHead(client.text()).status).toBe(200);
      client.write(utf8(`GET /through-tunnel HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`));
      await client.waitFor((t) => t.includes('"url":"/through-tunnel"'));
    } finally {
      client.destroy();
    }
  });
});

describe('absolute-URI authority (plain HTTP)', () => {
  it.each(cases().filter(([what, , , , , only]) => what !== 'no port' && only !== 'connect'))('%s: GET http://%s/ → %s %i %s', async (_what, authority, env, status, reason) => {
    const before = bench.upstream.seen.length;
    const response = await getRaw(authority, env);
    // A URI may carry "/" and "@" legitimately as path and userinfo; both forms are refused, or read as a path.
    expect(response.status).toBe(status);
    expect(response.headers['x-deny-reason']).toBe(reason);
    expect(bench.upstream.seen.length).toBe(before);
  });

  it('a slash ends the authority: http://evil.test/allowed.test:P/ is evil.test', async () => {
    const response = await getRaw('evil.test/allowed.test:{P}', 'app', 'evil.test');
    expect(response.status).toBe(403);
    expect(response.headers['x-deny-reason']).toBe('host_not_allowed');
  });

  it('no port means port 80, which app does not allow', async () => {
    const response = await getRaw('allowed.test', 'app');
    expect(response.status).toBe(403);
    expect(response.headers['x-deny-reason']).toBe('port_not_allowed');
  });

  it.each(controlCases())('%s is refused with 400: %j', async (_what, authority) => {
    const before = bench.upstream.seen.length;
    const response = await getRaw(authority, 'full', 'allowed.test');
    expect(response.status).toBe(400);
    expect(bench.upstream.seen.length).toBe(before);
  });

  it.each(sameHost())('%s: GET http://%s/ reaches allowed.test with a canonical Host', async (_what, authority) => {
    const before = bench.upstream.seen.length;
    const response = await getRaw(authority, 'app');
    expect(response.status).toBe(200);
    expect(bench.upstream.seen.length).toBe(before + 1);
    const seenHost = bench.upstream.seen.at(-1)?.headers.host;
    expect(seenHost).toMatch(new RegExp(`^(allowed\\.test|xn--bcher-kva\\.example):${P}$`));
  });

  it('a non-http scheme is refused', async () => {
    for (const uri of [`https://allowed.test:{P}/`, `ftp://allowed.test:{P}/`, `HTTP://allowed.test:{P}/x`]) {
      const response = parseResponseHead(await rawExchange(bench.gate.proxyPort, utf8(`GET ${uri} HTTP/1.1\r\n${bench.auth('app')}\r\nConnection: close\r\n\r\n`)));
      expect([uri, response.status]).toEqual([uri, uri.startsWith('HTTP:') ? 200 : 400]);
    }
  });

  it('an origin-form request (not a proxy request) is refused', async () => {
    const response = parseResponseHead(await rawExchange(bench.gate.proxyPort, utf8(`GET / HTTP/1.1\r\nHost: allowed.test:{P}\r\n${bench.auth('app')}\r\nConnection: close\r\n\r\n`)));
    expect(response.status).toBe(400);
    expect(response.headers['x-deny-reason']).toBe('bad_request');
  });
});
