// TLS inspection on the wire: the CA trusted by curl, Node, python3 and git; rules, body limit,
// secrets, fronting and upstream trust enforced inside the tunnel; opaque tunnels untouched.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCa } from '../../src/inspect/ca.js';
import { createTestCa } from '../helpers/certs.js';
import { fakePrivateKey, fakeSecrets } from '../helpers/fake-secrets.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { run, cleanEnv } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { send, tunnelAgent, type TunnelOptions } from '../helpers/tunnel.js';
import { startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

const ownHosts = [...new Set(fakeSecrets.map((s) => s.ownHost))];
const names = ['registry.npmjs.org', 'api.example.com', 'paste.example.com', 'git.example.com', 'opaque.example.com', ...ownHosts];

let gate: Gate;
let good: Upstream;
let untrusted: Upstream;
let session: TestSession;
let inspectionCa: string;
let upstreamCaFile: string;
let dir: string;

beforeAll(async () => {
  dir = tempDir();
  const upstreamCa = createTestCa();
  const rogueCa = createTestCa('an upstream CA nobody trusts');
  good = await startHttpsUpstream(upstreamCa.issue([...names, '127.0.0.1']));
  untrusted = await startHttpsUpstream(rogueCa.issue(['untrusted.example.com']));
  upstreamCaFile = join(dir, 'upstream-ca.pem');
  writeFileSync(upstreamCaFile, upstreamCa.certPem);
  const init = await initCa(join(dir, 'certs'));
  if (!init.ok) throw new Error(init.error);
  inspectionCa = init.files.cert;
  gate = await startGate({
    config: {
      upstream: {
        resolve: Object.fromEntries([...names, 'untrusted.example.com'].map((n) => [n, '127.0.0.1'])),
        allowPrivateNetworks: ['127.0.0.1/32'],
        caFiles: [upstreamCaFile],
      },
      inspection: { caDir: join(dir, 'certs') },
      limits: { requestsPerSecond: 10_000, burst: 10_000 },
    },
    environments: [
      {
        id: 'inspected',
        access: 'full',
        content: {
          inspect: 'all',
          inspectExclude: ['opaque.example.com'],
          methods: ['GET', 'HEAD', 'POST'],
          rules: [
            { hosts: ['registry.npmjs.org'], methods: ['PUT', 'DELETE'], action: 'deny' },
            { hosts: ['api.example.com'], paths: ['/v1/public/**'], action: 'allow' },
            { hosts: ['api.example.com'], action: 'deny' },
          ],
          maxRequestBodyBytes: 4096,
          secrets: 'block',
        },
      },
    ],
  });
  session = await addSession(gate, 'inspected');
});

afterAll(async () => {
  await gate?.stop();
  await good?.close();
  await untrusted?.close();
});

const auth = (): string => `Basic ${Buffer.from(`${session.id}:${session.token}`).toString('base64')}`;
const via = (host: string, extra: Partial<TunnelOptions> = {}): ReturnType<typeof tunnelAgent> =>
  tunnelAgent({ proxyPort: gate.proxyPort, proxyAuthorization: auth(), authority: `${host}:${good.port}`, ca: readCa(), ...extra });
let caText: string | undefined;
const readCa = (): string => (caText ??= readFileSync(inspectionCa, 'utf8'));
const seen = (path: string): boolean => good.seen.some((s) => s.url === path);

function curl(args: string[]): Promise<{ code: number | null; status: string; reason: string; stderr: string }> {
  return run('curl', ['-sS', '--max-time', '20', '--proxy', session.proxyUrl, '-o', '/dev/null', '-D', '-', '-w', '\n%{http_code}', ...args], { env: cleanEnv() }).then((r) => ({
    code: r.code,
    status: r.stdout.trim().split('\n').pop() ?? '',
    reason: /x-deny-reason: (\S+)/i.exec(r.stdout)?.[1] ?? '',
    stderr: r.stderr,
  }));
}

describe('curl --cacert (the inspection CA)', () => {
  it('an allowed GET passes, and the upstream sees it', async () => {
    const r = await curl(['--cacert', inspectionCa, `https://registry.npmjs.org:${good.port}/left-pad`]);
    expect(r.status, r.stderr).toBe('200');
    expect(seen('/left-pad')).toBe(true);
  });

  it('a PUT to the registry whose rule denies publishing gets 403 content_filtered', async () => {
    const r = await curl(['--cacert', inspectionCa, '-X', 'PUT', '--data', '{"name":"x"}', `https://registry.npmjs.org:${good.port}/publish-me`]);
    expect([r.status, r.reason]).toEqual(['403', 'content_filtered']);
    expect(seen('/publish-me')).toBe(false);
  });

  it('an upstream with a certificate from an untrusted CA gives 502 upstream_tls_error', async () => {
    const r = await curl(['--cacert', inspectionCa, `https://untrusted.example.com:${untrusted.port}/x`]);
    expect([r.status, r.reason]).toEqual(['502', 'upstream_tls_error']);
    expect(untrusted.seen).toHaveLength(0);
  });

  it('without the CA, the client refuses the leaf (it is not the real certificate)', async () => {
    const r = await curl(['--cacert', upstreamCaFile, `https://registry.npmjs.org:${good.port}/no-trust`]);
    expect(r.code).not.toBe(0);
    expect(seen('/no-trust')).toBe(false);
  });

  it('an excluded host is tunnelled untouched: the client sees the upstream certificate', async () => {
    const r = await curl(['--cacert', upstreamCaFile, `https://opaque.example.com:${good.port}/pinned`]);
    expect(r.status, r.stderr).toBe('200');
  });
});

describe('Node https (ca) on one kept-alive tunnel', () => {
  it('checks every request, not only the first', async () => {
    const agent = via('api.example.com');
    try {
      const host = `api.example.com:${good.port}`;
      expect((await send(agent, host, { path: '/v1/public/a' })).status).toBe(200);
      const refused = await send(agent, host, { path: '/v1/private/b' });
      expect([refused.status, refused.headers['x-deny-reason']]).toEqual([403, 'content_filtered']);
      expect(refused.body).toMatch(/refused by egress-gate policy/);
      expect((await send(agent, host, { path: '/v1/public/../private/c' })).status).toBe(403);
      expect((await send(agent, host, { path: '/v1/public/d' })).status).toBe(200);
      expect(agent.tunnels).toBe(1);
      expect(seen('/v1/private/b')).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('a Host header naming another host than the CONNECT is refused 421 (domain fronting)', async () => {
    const agent = via('api.example.com');
    try {
      const r = await send(agent, `paste.example.com:${good.port}`, { path: '/v1/public/fronted' });
      expect([r.status, r.headers['x-deny-reason']]).toEqual([421, 'misdirected']);
      expect(seen('/v1/public/fronted')).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('an SNI naming another host than the CONNECT is refused 421', async () => {
    const agent = via('api.example.com', { servername: 'paste.example.com', anyName: true });
    try {
      const r = await send(agent, `api.example.com:${good.port}`, { path: '/v1/public/sni' });
      expect([r.status, r.headers['x-deny-reason']]).toEqual([421, 'misdirected']);
      expect(seen('/v1/public/sni')).toBe(false);
    } finally {
      agent.destroy();
    }
  });
});

describe('the tunnel follows the policy', () => {
  it('an IP-literal CONNECT gets a leaf for that address', async () => {
    const r = await curl(['--cacert', inspectionCa, `https://127.0.0.1:${good.port}/by-ip`]);
    expect(r.status, r.stderr).toBe('200');
    expect(seen('/by-ip')).toBe(true);
  });

  it('a revoked session loses its inspected tunnel at once', async () => {
    const doomed = await addSession(gate, 'inspected');
    const agent = tunnelAgent({ proxyPort: gate.proxyPort, proxyAuthorization: `Basic ${Buffer.from(`${doomed.id}:${doomed.token}`).toString('base64')}`, authority: `registry.npmjs.org:${good.port}`, ca: readCa() });
    try {
      const host = `registry.npmjs.org:${good.port}`;
      expect((await send(agent, host, { path: '/before-revoke' })).status).toBe(200);
      await gate.runtime.store.deleteSession(doomed.id);
      // The tunnel is closed by the sweep; a new one is refused 407.
      await expect(send(agent, host, { path: '/after-revoke' })).rejects.toThrow();
      expect(seen('/after-revoke')).toBe(false);
    } finally {
      agent.destroy();
    }
  });
});

describe('secrets inside inspected tunnels', () => {
  const cases = fakeSecrets.map((s, i) => [`${s.kind}#${i}`, s.value, s.ownHost] as const);
  it.each(cases)('%s: refused to a foreign host (body and header), passes to its own service %s', async (kind, value, ownHost) => {
    const paste = via('paste.example.com');
    const own = via(ownHost);
    try {
      const host = `paste.example.com:${good.port}`;
      const body = await send(paste, host, { method: 'POST', path: `/paste-${kind}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: `key ${value} end` }) });
      expect([body.status, body.headers['x-deny-reason']]).toEqual([403, 'secret_detected']);
      const header = await send(via('paste.example.com'), host, { path: '/h', headers: { authorization: `Bearer ${value}` } });
      expect([header.status, header.headers['x-deny-reason']]).toEqual([403, 'secret_detected']);
      const query = await send(via('paste.example.com'), host, { path: `/q?token=${value}` });
      expect(query.status).toBe(403);
      const ok = await send(own, `${ownHost}:${good.port}`, { method: 'POST', path: `/own-${kind}`, headers: { authorization: `Bearer ${value}` }, body: JSON.stringify({ key: value }) });
      expect(ok.status).toBe(200);
      expect(good.seen.find((s) => s.url === `/own-${kind}`)?.bodyBytes).toBeGreaterThan(value.length);
    } finally {
      paste.destroy();
      own.destroy();
    }
  });

  it('a private key is refused even to github.com', async () => {
    const agent = via('api.github.com');
    try {
      const r = await send(agent, `api.github.com:${good.port}`, { method: 'POST', path: '/gists', body: JSON.stringify({ files: { k: { content: fakePrivateKey } } }) });
      expect([r.status, r.headers['x-deny-reason']]).toEqual([403, 'secret_detected']);
    } finally {
      agent.destroy();
    }
  });

  it('a credential deep in a streamed body is refused and the upstream request never completes', async () => {
    const agent = via('paste.example.com');
    try {
      const token = fakeSecrets[2]?.value as string;
      const body = `${'x'.repeat(3000)} ${token} ${'y'.repeat(500)}`;
      const r = await send(agent, `paste.example.com:${good.port}`, { method: 'POST', path: '/deep', headers: { 'transfer-encoding': 'chunked' }, body });
      expect(r.status).toBe(403);
      expect(seen('/deep')).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('logs the kind of secret, never its value', async () => {
    const records = gate.decisions().filter((d) => d.reason === 'secret_detected');
    expect(records.length).toBeGreaterThan(fakeSecrets.length);
    expect(records.every((d) => typeof d.rule === 'string' && (d.rule as string).startsWith('secret:') && d.inspected === true)).toBe(true);
    const all = gate.logs.join('\n');
    for (const s of fakeSecrets) expect(all.includes(s.value.slice(4, 20))).toBe(false);
  });
});

/** GIT_SSL_CAINFO would override http.sslCAInfo: the test must rely on the config alone. */
function gitEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv({ GIT_TERMINAL_PROMPT: '0' });
  delete env.GIT_SSL_CAINFO;
  return env;
}

describe('python3 urllib (cafile) and git (http.sslCAInfo)', () => {
  it('python3: a small body passes, a body over maxRequestBodyBytes is refused', async () => {
    const script = `
import json, ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[1])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({'https': sys.argv[2]}), urllib.request.HTTPSHandler(context=ctx))
out = []
for size in (100, 8000):
    req = urllib.request.Request(sys.argv[3] + str(size), data=b'a' * size, method='POST')
    try:
        out.append([opener.open(req, timeout=20).status, ''])
    except urllib.error.HTTPError as e:
        out.append([e.code, e.headers.get('X-Deny-Reason')])
print(json.dumps(out))
`;
    const r = await run('python3', ['-c', script, inspectionCa, session.proxyUrl, `https://registry.npmjs.org:${good.port}/upload-`], { env: cleanEnv() });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      [200, ''],
      [403, 'content_filtered'],
    ]);
    expect(seen('/upload-8000')).toBe(false);
  });

  it('git ls-remote: the handshake and request pass inspection; a refused path shows the 403', async () => {
    const git = (url: string) =>
      run('git', ['-c', `http.proxy=${session.proxyUrl}`, '-c', `http.sslCAInfo=${inspectionCa}`, 'ls-remote', url], { env: gitEnv() });
    const allowed = await git(`https://git.example.com:${good.port}/repo.git`);
    // The stand-in upstream is not a git server: what matters is that git's request reached it.
    expect(good.seen.some((s) => s.url.startsWith('/repo.git/info/refs'))).toBe(true);
    expect(allowed.stderr).not.toMatch(/SSL|certificate/i);
    const refused = await git(`https://api.example.com:${good.port}/private.git`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/403/);
    expect(good.seen.some((s) => s.url.startsWith('/private.git'))).toBe(false);
  });
});
