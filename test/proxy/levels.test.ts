// Every access level enforced on the wire: curl through the real proxy to local upstreams that
// stand in for real hostnames (upstream.resolve), CONNECT and plain HTTP.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestCa } from '../helpers/certs.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { rawConnect, rawExchange, parseResponseHead, basicAuth } from '../helpers/raw.js';
import { run, cleanEnv } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

const names = ['registry.npmjs.org', 'pypi.org', 'api.anthropic.com', 'api.example.com', 'a.internal.example.com', 'internal.example.com', 'example.org', 'gcr.io', 'eu.gcr.io'];

let gate: Gate;
let https: Upstream;
let http: Upstream;
let caFile: string;
const sessions: Record<string, TestSession> = {};

beforeAll(async () => {
  const ca = createTestCa();
  https = await startHttpsUpstream(ca.issue(names));
  http = await startHttpUpstream();
  caFile = join(tempDir(), 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  const ports = [https.port, http.port];
  gate = await startGate({
    config: {
      upstream: { resolve: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'] },
    },
    environments: [
      { id: 'none', access: 'none', allowedPorts: ports },
      { id: 'trusted', access: 'trusted', allowedPorts: ports },
      { id: 'full', access: 'full' },
      { id: 'custom', access: 'custom', allowedDomains: ['api.example.com', '*.internal.example.com'], allowedPorts: ports },
      { id: 'custom-defaults', access: 'custom', allowedDomains: ['api.example.com'], includeDefaults: true, allowedPorts: ports },
      { id: 'denied', access: 'full', deniedDomains: ['pypi.org', '*.internal.example.com'] },
      { id: 'ports', access: 'trusted' },
    ],
  });
  for (const id of ['none', 'trusted', 'full', 'custom', 'custom-defaults', 'denied', 'ports']) sessions[id] = await addSession(gate, id);
});

afterAll(async () => {
  await gate?.stop();
  await https?.close();
  await http?.close();
});

// [environment, host, allowed?, reason when refused, why]
const table: [string, string, boolean, string, string][] = [
  ['none', 'registry.npmjs.org', false, 'host_not_allowed', 'none reaches nothing on the Trusted list'],
  ['none', 'api.anthropic.com', true, '', 'defaults.alwaysAllow holds under none'],
  ['trusted', 'registry.npmjs.org', true, '', 'on the Trusted list'],
  ['trusted', 'pypi.org', true, '', 'on the Trusted list'],
  ['trusted', 'eu.gcr.io', true, '', '*.gcr.io'],
  ['trusted', 'gcr.io', true, '', 'gcr.io listed separately'],
  ['trusted', 'example.org', false, 'host_not_allowed', 'not on the list'],
  ['full', 'example.org', true, '', 'full reaches any domain'],
  ['custom', 'api.example.com', true, '', 'exact entry'],
  ['custom', 'a.internal.example.com', true, '', 'wildcard entry'],
  ['custom', 'internal.example.com', false, 'host_not_allowed', '*. does not cover the apex'],
  ['custom', 'registry.npmjs.org', false, 'host_not_allowed', 'defaults not included'],
  ['custom-defaults', 'registry.npmjs.org', true, '', 'includeDefaults'],
  ['custom-defaults', 'api.example.com', true, '', 'own entry'],
  ['custom-defaults', 'example.org', false, 'host_not_allowed', 'on neither list'],
  ['denied', 'pypi.org', false, 'host_denied', 'deny wins even under full'],
  ['denied', 'a.internal.example.com', false, 'host_denied', 'wildcard deny'],
  ['denied', 'example.org', true, '', 'full otherwise'],
  ['ports', 'registry.npmjs.org', false, 'port_not_allowed', 'trusted allows 80 and 443 only'],
];

function curlArgs(session: TestSession, url: string): string[] {
  return ['-sS', '--max-time', '20', '--proxy', session.proxyUrl, '--cacert', caFile, '-D', '-', '-o', '/dev/null', '-w', '\\n%{http_code} %{http_connect}', url];
}

describe('access levels over CONNECT (curl, HTTPS)', () => {
  it.each(table)('%s → %s: allowed=%s %s (%s)', async (env, host, allowed, reason) => {
    const session = sessions[env] as TestSession;
    const before = https.seen.length;
    const result = await run('curl', curlArgs(session, `https://${host}:${https.port}/probe`), { env: cleanEnv() });
    if (allowed) {
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/\n200 200$/);
      const seen = https.seen.at(-1);
      expect(seen?.url).toBe('/probe');
      expect(seen?.headers.host).toBe(`${host}:${https.port}`);
    } else {
      expect(result.code).not.toBe(0);
      expect(https.seen.length).toBe(before);
      const refusal = await rawConnect(gate.proxyPort, `${host}:${https.port}`, [basicAuth(session.id, session.token)]);
      expect(refusal.status).toBe(403);
      expect(refusal.headers['x-deny-reason']).toBe(reason);
      expect(refusal.body).toContain(host);
      expect(refusal.body).toContain(`"${env}"`);
      expect(refusal.body.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('access levels over plain HTTP (curl, absolute-form)', () => {
  it.each(table)('%s → %s: allowed=%s %s (%s)', async (env, host, allowed, reason) => {
    const session = sessions[env] as TestSession;
    const before = http.seen.length;
    const result = await run('curl', ['-sS', '--max-time', '20', '--proxy', session.proxyUrl, '-D', '-', `http://${host}:${http.port}/plain?q=1`], { env: cleanEnv() });
    expect(result.code, result.stderr).toBe(0);
    const response = parseResponseHead(result.stdout);
    if (allowed) {
      expect(response.status).toBe(200);
      const seen = http.seen.at(-1);
      expect(seen?.url).toBe('/plain?q=1');
      expect(seen?.headers.host).toBe(`${host}:${http.port}`);
      expect(seen?.headers['proxy-authorization']).toBeUndefined();
    } else {
      expect(response.status).toBe(403);
      expect(response.headers['x-deny-reason']).toBe(reason);
      expect(response.body).toContain(host);
      expect(http.seen.length).toBe(before);
    }
  });
});

describe('wire details', () => {
  it('refuses a Host header that names another authority (421 misdirected) before any upstream byte', async () => {
    const before = http.seen.length;
    const raw = await rawExchange(gate.proxyPort, `GET http://registry.npmjs.org:${http.port}/ HTTP/1.1\r\nHost: evil.example\r\n${basicAuth(sessions.trusted!.id, sessions.trusted!.token)}\r\n\r\n`);
    const response = parseResponseHead(raw);
    expect(response.status).toBe(421);
    expect(response.headers['x-deny-reason']).toBe('misdirected');
    expect(http.seen.length).toBe(before);
  });

  it('never forwards Proxy-Authorization or hop-by-hop headers', async () => {
    const s = sessions.trusted!;
    const raw = await rawExchange(
      gate.proxyPort,
      `GET http://registry.npmjs.org:${http.port}/h HTTP/1.1\r\nHost: registry.npmjs.org:${http.port}\r\n${basicAuth(s.id, s.token)}\r\nConnection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-End-To-End: yes\r\n\r\n`,
    );
    expect(parseResponseHead(raw).status).toBe(200);
    const seen = http.seen.at(-1)!;
    expect(seen.headers['x-end-to-end']).toBe('yes');
    for (const name of ['proxy-authorization', 'x-secret-hop', 'keep-alive', 'te', 'proxy-connection']) expect(seen.headers[name]).toBeUndefined();
  });

  it('keeps a client connection alive across requests and checks each one (a switch to a refused host is refused)', async () => {
    const s = sessions.custom!;
    const auth = basicAuth(s.id, s.token);
    const raw = await rawExchange(
      gate.proxyPort,
      `GET http://api.example.com:${http.port}/one HTTP/1.1\r\nHost: api.example.com:${http.port}\r\n${auth}\r\n\r\n` +
        `GET http://registry.npmjs.org:${http.port}/two HTTP/1.1\r\nHost: registry.npmjs.org:${http.port}\r\n${auth}\r\n\r\n` +
        `GET http://api.example.com:${http.port}/three HTTP/1.1\r\nHost: api.example.com:${http.port}\r\n${auth}\r\n\r\n`,
      { waitMs: 500 },
    );
    const statuses = [...raw.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 403, 200]);
    expect(http.seen.map((r) => r.url)).not.toContain('/two');
    expect(http.seen.map((r) => r.url)).toContain('/three');
  });

  it('answers an origin-form request to the proxy itself with 400 bad_request', async () => {
    const response = parseResponseHead(await rawExchange(gate.proxyPort, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    expect(response.status).toBe(400);
    expect(response.headers['x-deny-reason']).toBe('bad_request');
  });

  it('answers an unreachable upstream with 502 upstream_unreachable', async () => {
    const closed = await startHttpUpstream();
    const port = closed.port;
    await closed.close();
    const s = sessions.full!;
    const response = await rawConnect(gate.proxyPort, `example.org:${port}`, [basicAuth(s.id, s.token)]);
    expect(response.status).toBe(502);
    expect(response.headers['x-deny-reason']).toBe('upstream_unreachable');
  });

  it('writes one decision record per request with environment, host, reason and bytes', async () => {
    const s = sessions.trusted!;
    await run('curl', curlArgs(s, `https://pypi.org:${https.port}/logged`), { env: cleanEnv() });
    await new Promise((r) => setTimeout(r, 100));
    const record = gate.decisions().find((d) => d.host === 'pypi.org' && d.session === s.id && d.method === 'CONNECT' && d.decision === 'allow');
    expect(record).toMatchObject({ environment: 'trusted', port: https.port, reason: 'allowed' });
    expect(record?.bytesUp).toBeGreaterThan(0);
    expect(record?.bytesDown).toBeGreaterThan(0);
    expect(typeof record?.durationMs).toBe('number');
  });
});
