// Identity: Proxy-Authorization Basic <session>:<token>. Missing credentials fall back to the
// default environment only when auth.required is false; wrong ones never fall back.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, parseResponseHead, rawConnect, rawExchange } from '../helpers/raw.js';
import { run, cleanEnv } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let open: Gate;
let closed: Gate;
let openSession: TestSession;
let closedSession: TestSession;

function gateConfig(required: boolean) {
  return {
    config: { auth: { required, defaultEnvironment: 'default' }, upstream: { resolve: { 'registry.npmjs.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
    environments: [{ id: 'default', access: 'trusted', allowedPorts: [upstream.port] }],
  };
}

beforeAll(async () => {
  upstream = await startHttpUpstream();
  open = await startGate(gateConfig(false));
  closed = await startGate(gateConfig(true));
  openSession = await addSession(open, 'default');
  closedSession = await addSession(closed, 'default');
});

afterAll(async () => {
  await open?.stop();
  await closed?.stop();
  await upstream?.close();
});

const wrongCredentials = (s: TestSession): [string, string][] => [
  ['unknown session', basicAuth('ses_doesnotexist', s.token)],
  ['wrong token', basicAuth(s.id, `${s.token}x`)],
  ['empty user', basicAuth('', s.token)],
  ['no colon', `Proxy-Authorization: Basic ${Buffer.from(s.id).toString('base64')}`],
  ['not base64', 'Proxy-Authorization: Basic !!!notbase64!!!'],
  ['other scheme', `Proxy-Authorization: Bearer ${s.token}`],
  ['very long', basicAuth(s.id, 'x'.repeat(5000))],
];

describe('auth.required: true', () => {
  it('answers a request without credentials with 407 auth_required and a Basic challenge', async () => {
    const response = await rawConnect(closed.proxyPort, `registry.npmjs.org:${upstream.port}`);
    expect(response.status).toBe(407);
    expect(response.headers['x-deny-reason']).toBe('auth_required');
    expect(response.headers['proxy-authenticate']).toBe('Basic realm="egress-gate"');
  });

  it('serves a valid session (curl with credentials in the proxy URL)', async () => {
    const result = await run('curl', ['-sS', '--proxy', closedSession.proxyUrl, '-o', '/dev/null', '-w', '%{http_code}', `http://registry.npmjs.org:${upstream.port}/`], { env: cleanEnv() });
    expect(result.stdout).toBe('200');
  });

  it.each([0, 1, 2, 3, 4, 5, 6])('refuses wrong credentials #%i with 407 auth_invalid', async (index) => {
    const [, header] = wrongCredentials(closedSession)[index]!;
    const response = await rawConnect(closed.proxyPort, `registry.npmjs.org:${upstream.port}`, [header]);
    expect(response.status).toBe(407);
    expect(response.headers['x-deny-reason']).toBe('auth_invalid');
    expect(response.headers['proxy-authenticate']).toBe('Basic realm="egress-gate"');
  });
});

describe('auth.required: false', () => {
  it('gives a client without credentials the default environment', async () => {
    const raw = await rawExchange(open.proxyPort, `GET http://registry.npmjs.org:${upstream.port}/anon HTTP/1.1\r\nHost: registry.npmjs.org:${upstream.port}\r\nConnection: close\r\n\r\n`);
    expect(parseResponseHead(raw).status).toBe(200);
  });

  it.each([0, 1, 2, 3, 4, 5, 6])('never falls back to the default environment on wrong credentials #%i', async (index) => {
    const [, header] = wrongCredentials(openSession)[index]!;
    const raw = await rawExchange(open.proxyPort, `GET http://registry.npmjs.org:${upstream.port}/x HTTP/1.1\r\nHost: registry.npmjs.org:${upstream.port}\r\n${header}\r\n\r\n`);
    const response = parseResponseHead(raw);
    expect(response.status).toBe(407);
    expect(response.headers['x-deny-reason']).toBe('auth_invalid');
  });

  it('a revoked session is refused at once', async () => {
    const s = await addSession(open, 'default');
    const ok = await rawConnect(open.proxyPort, `registry.npmjs.org:${upstream.port}`, [basicAuth(s.id, s.token)]);
    expect(ok.status).toBe(200);
    await open.runtime.store.deleteSession(s.id);
    const refused = await rawConnect(open.proxyPort, `registry.npmjs.org:${upstream.port}`, [basicAuth(s.id, s.token)]);
    expect(refused.status).toBe(407);
    expect(refused.headers['x-deny-reason']).toBe('auth_invalid');
  });
});

describe('secrets stay out of the logs', () => {
  it('no log line carries a token, a Basic credential or a Proxy-Authorization value', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const logs = [...open.logs, ...closed.logs].join('\n');
    expect(logs).toContain('"msg":"decision"');
    for (const s of [openSession, closedSession]) {
      expect(logs).not.toContain(s.token);
      expect(logs).not.toContain(Buffer.from(`${s.id}:${s.token}`).toString('base64'));
    }
    expect(logs).not.toMatch(/basic [a-z0-9+/=]{8,}/i);
    expect(logs.toLowerCase()).not.toContain('proxy-authorization');
  });
});
