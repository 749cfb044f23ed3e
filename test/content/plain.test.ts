// Without inspection: HTTPS tunnels stay opaque (the client sees the upstream's own
// certificate and the rules do not apply), plain HTTP is filtered on every request. And an
// inspected environment without a CA fails closed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { createTestCa } from '../helpers/certs.js';
import { fakeSecrets } from '../helpers/fake-secrets.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { run, cleanEnv } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

const names = ['registry.npmjs.org', 'paste.example.com'];
const token = fakeSecrets[2]?.value as string;

let gate: Gate;
let https: Upstream;
let http: Upstream;
let caFile: string;
let dir: string;
const sessions: Record<string, TestSession> = {};

beforeAll(async () => {
  dir = tempDir();
  const ca = createTestCa();
  https = await startHttpsUpstream(ca.issue(names));
  http = await startHttpUpstream();
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  const content = {
    inspect: 'off',
    methods: ['GET', 'POST'],
    rules: [{ hosts: ['registry.npmjs.org'], methods: ['PUT', 'DELETE'], action: 'deny' }],
    maxRequestBodyBytes: 1000,
  };
  gate = await startGate({
    config: {
      upstream: { resolve: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'] },
      // No CA was ever made here: inspection must refuse, not fall back to an opaque tunnel.
      inspection: { caDir: join(dir, 'no-ca') },
      limits: { requestsPerSecond: 10_000, burst: 10_000 },
    },
    environments: [
      { id: 'opaque', access: 'full', content },
      { id: 'logonly', access: 'full', content: { secrets: 'log' } },
      { id: 'needs-ca', access: 'full', content: { inspect: 'all' } },
    ],
  });
  for (const id of ['opaque', 'logonly', 'needs-ca']) sessions[id] = await addSession(gate, id);
});

afterAll(async () => {
  await gate?.stop();
  await https?.close();
  await http?.close();
});

async function curl(env: string, args: string[]): Promise<{ statuses: string[]; reasons: string[]; stderr: string; code: number | null }> {
  const r = await run('curl', ['-sS', '--max-time', '20', '--proxy', (sessions[env] as TestSession).proxyUrl, '-o', '/dev/null', '-D', '-', ...args], { env: cleanEnv() });
  return {
    statuses: [...r.stdout.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1] as string),
    reasons: [...r.stdout.matchAll(/^x-deny-reason: (\S+)/gim)].map((m) => m[1] as string),
    stderr: r.stderr,
    code: r.code,
  };
}
const seen = (upstream: Upstream, path: string): boolean => upstream.seen.some((s) => s.url === path);

describe('inspection off: tunnels stay opaque', () => {
  it('the client verifies the upstream certificate itself, and a PUT the rules deny still passes inside', async () => {
    const r = await curl('opaque', ['--cacert', caFile, '-X', 'PUT', '--data', 'x', `https://registry.npmjs.org:${https.port}/opaque-put`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.statuses).toEqual(['200', '200']);
    expect(seen(https, '/opaque-put')).toBe(true);
  });
});

describe('plain HTTP is filtered on every request', () => {
  it('a PUT to the registry is refused between two GETs on one kept-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const ask = (method: string, path: string): Promise<[number, string | undefined]> =>
      new Promise((resolve, reject) => {
        const session = sessions.opaque as TestSession;
        const auth = `Basic ${Buffer.from(`${session.id}:${session.token}`).toString('base64')}`;
        const req = request({ agent, host: '127.0.0.1', port: gate.proxyPort, method, path: `http://registry.npmjs.org:${http.port}${path}`, headers: { host: `registry.npmjs.org:${http.port}`, 'proxy-authorization': auth } }, (res) => {
          sockets.add(res.socket);
          res.resume();
          res.on('end', () => resolve([res.statusCode ?? 0, res.headers['x-deny-reason'] as string | undefined]));
        });
        req.on('error', reject);
        req.end(method === 'PUT' ? 'x' : undefined);
      });
    try {
      expect(await ask('GET', '/first')).toEqual([200, undefined]);
      expect(await ask('PUT', '/plain-put')).toEqual([403, 'content_filtered']);
      expect(await ask('GET', '/third')).toEqual([200, undefined]);
      expect(sockets.size).toBe(1);
      expect(seen(http, '/plain-put')).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('a method outside content.methods is refused', async () => {
    const r = await curl('opaque', ['-X', 'PATCH', `http://paste.example.com:${http.port}/patch`]);
    expect([r.statuses, r.reasons]).toEqual([['403'], ['content_filtered']]);
  });

  it('a body over maxRequestBodyBytes is refused, declared or chunked', async () => {
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(5000, 'a'));
    const declared = await curl('opaque', ['--data-binary', `@${big}`, `http://paste.example.com:${http.port}/big`]);
    expect([declared.statuses, declared.reasons]).toEqual([['403'], ['content_filtered']]);
    const chunked = await curl('opaque', ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${big}`, `http://paste.example.com:${http.port}/big-chunked`]);
    expect([chunked.statuses, chunked.reasons]).toEqual([['403'], ['content_filtered']]);
    expect(http.seen.some((s) => s.url.startsWith('/big'))).toBe(false);
    const small = await curl('opaque', ['--data-binary', 'small', `http://paste.example.com:${http.port}/small`]);
    expect(small.statuses).toEqual(['200']);
  });

  it('a credential in the URL, a header or the body is refused (secrets default to block)', async () => {
    const url = `http://paste.example.com:${http.port}`;
    for (const args of [[`${url}/q?key=${token}`], ['-H', `X-Token: ${token}`, `${url}/h`], ['--data', `k=${token}&x=1`, `${url}/b`]]) {
      const r = await curl('opaque', args);
      expect([r.statuses, r.reasons]).toEqual([['403'], ['secret_detected']]);
    }
    expect(http.seen.some((s) => ['/q', '/h', '/b'].includes(s.url.split('?')[0] as string))).toBe(false);
  });

  it('secrets: log lets the request pass and records the kind, not the value', async () => {
    const r = await curl('logonly', ['--data', `k=${token}`, `http://paste.example.com:${http.port}/logged`]);
    expect(r.statuses).toEqual(['200']);
    expect(seen(http, '/logged')).toBe(true);
    const record = gate.decisions().find((d) => d.environment === 'logonly' && d.detail === 'secret_logged:github_token');
    expect(record).toBeDefined();
    expect(gate.logs.join('\n').includes(token.slice(4))).toBe(false);
  });
});

describe('inspection without a CA', () => {
  it('fails closed with 502 upstream_tls_error rather than tunnelling unseen', async () => {
    const r = await curl('needs-ca', ['--cacert', caFile, `https://registry.npmjs.org:${https.port}/no-ca`]);
    expect(r.statuses).toEqual(['502']);
    expect(r.reasons).toEqual(['upstream_tls_error']);
    expect(seen(https, '/no-ca')).toBe(false);
  });
});
