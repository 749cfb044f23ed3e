// `workers: 2` on the file store: two processes behind one listener keep the semantics of one:
// a session created through either worker's API works on both at once, and a session's burst
// is shared (the buckets live in the cluster primary), not doubled.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../helpers/admin.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { listeningWorkers, serveWorkers, type Served } from '../helpers/serve.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let served: Served;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  served = await serveWorkers(2, {
    auth: { required: true },
    upstream: { resolve: { 'api.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] },
  });
});

afterAll(async () => {
  served?.child.kill('SIGTERM');
  await served?.exited;
  await upstream?.close();
});

describe('workers: 2', () => {
  it('two worker processes serve', async () => {
    expect(new Set(await listeningWorkers(served, 2)).size).toBe(2);
  });

  it('a session made through the API works on every worker at once', async () => {
    await api(served.adminUrl, 'PUT', '/v1/environments/w', { access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [upstream.port] });
    for (let round = 0; round < 3; round++) {
      const session = (await api(served.adminUrl, 'POST', '/v1/sessions', { environment: 'w' })).body;
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await rawConnect(served.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    }
  });

  it("a session's burst is shared across workers", async () => {
    await api(served.adminUrl, 'PUT', '/v1/environments/lim', { access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [upstream.port], rateLimit: { requestsPerSecond: 1, burst: 5 } });
    const session = (await api(served.adminUrl, 'POST', '/v1/sessions', { environment: 'lim' })).body;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await rawConnect(served.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
  });
});
