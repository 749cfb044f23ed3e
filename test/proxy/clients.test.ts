// Real clients that sandboxes run, configured the way sandboxes configure them: environment
// variables (HTTPS_PROXY/HTTP_PROXY) and a CA bundle, not test-only flags.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { createTestCa } from '../helpers/certs.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { run, cleanEnv } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

let gate: Gate;
let https: Upstream;
let http: Upstream;
let ca: ReturnType<typeof createTestCa>;
let caFile: string;
let session: TestSession;

beforeAll(async () => {
  ca = createTestCa();
  https = await startHttpsUpstream(ca.issue(['pypi.org', 'files.pythonhosted.org', 'registry.npmjs.org']));
  http = await startHttpUpstream();
  caFile = join(tempDir(), 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  gate = await startGate({
    config: { auth: { required: true }, upstream: { resolve: { 'pypi.org': '127.0.0.1', 'registry.npmjs.org': '127.0.0.1', 'example.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
    environments: [{ id: 'ci', access: 'trusted', allowedPorts: [https.port, http.port] }],
  });
  session = await addSession(gate, 'ci');
});

afterAll(async () => {
  await gate?.stop();
  await https?.close();
  await http?.close();
});

const python = `
import json, os, ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=os.environ["TEST_CA"])
opener = urllib.request.build_opener(urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=ctx))
out = {}
for name, url in [("allowed", sys.argv[1]), ("plain", sys.argv[2]), ("refused", sys.argv[3])]:
    try:
        with opener.open(url, timeout=20) as r:
            out[name] = r.status
    except urllib.error.HTTPError as e:
        out[name] = [e.code, e.headers.get("X-Deny-Reason")]
    except Exception as e:
        out[name] = repr(e)
print(json.dumps(out))
`;

describe('sandbox clients with HTTPS_PROXY set', () => {
  it("undici's ProxyAgent (Node's fetch stack) over CONNECT", async () => {
    const agent = new ProxyAgent({ uri: session.proxyUrl.replace(/\/\/[^@]+@/, '//'), token: `Basic ${Buffer.from(`${session.id}:${session.token}`).toString('base64')}`, requestTls: { ca: ca.certPem } });
    try {
      const ok = await request(`https://registry.npmjs.org:${https.port}/undici`, { dispatcher: agent });
      expect(ok.statusCode).toBe(200);
      expect(((await ok.body.json()) as { url: string }).url).toBe('/undici');
      await expect(request(`https://example.org:${https.port}/`, { dispatcher: agent })).rejects.toThrow(/403/);
    } finally {
      await agent.close();
    }
  });

  it("python3's urllib, HTTPS and plain HTTP, allowed and refused", async () => {
    const env = cleanEnv({ HTTPS_PROXY: session.proxyUrl, HTTP_PROXY: session.proxyUrl, TEST_CA: caFile });
    const result = await run('python3', ['-c', python, `https://pypi.org:${https.port}/simple/`, `http://registry.npmjs.org:${http.port}/p`, `http://example.org:${http.port}/`], { env });
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(out.allowed).toBe(200);
    expect(out.plain).toBe(200);
    expect(out.refused).toEqual([403, 'host_not_allowed']);
  });

  it('curl reading HTTPS_PROXY from the environment', async () => {
    const env = cleanEnv({ HTTPS_PROXY: session.proxyUrl, https_proxy: session.proxyUrl });
    const result = await run('curl', ['-sS', '--cacert', caFile, `https://pypi.org:${https.port}/env`], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ url: '/env' });
  });
});
