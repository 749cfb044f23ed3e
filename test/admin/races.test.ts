// Re-reads of the state folder (POST /v1/reload, the folder watch, other workers) racing API
// writes: a write acknowledged while a re-read was under way must never be undone by it. The
// case that matters most is a revoked session coming back to life.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api } from '../helpers/admin.js';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';
import { hashToken } from '../../src/state/sessions.js';

let gate: Gate;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  gate = await startGate({
    config: { auth: { required: true }, upstream: { resolve: { 'api.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
  });
});

afterAll(async () => {
  await gate?.stop();
  await upstream?.close();
});

describe('re-reads racing writes', () => {
  it('no acknowledged PUT, session or revocation is undone by a concurrent reload', async () => {
    // Enough session files that one re-read of the folder outlasts several API writes.
    const createdAt = new Date().toISOString();
    for (let i = 0; i < 3_000; i++) {
      writeFileSync(join(gate.stateDir, 'sessions', `bulk-${i}.json`), JSON.stringify({ id: `bulk-${i}`, environment: 'race', tokenHash: hashToken(`t${i}`), createdAt }));
    }
    await api(gate, 'PUT', '/v1/environments/race', { access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [upstream.port] });
    expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);

    const revoked: { id: string; token: string }[] = [];
    let lastVersion = -1;
    let stop = false;
    const deadline = Date.now() + 3_000;
    const reloader = (async () => {
      while (!stop && Date.now() < deadline) await api(gate, 'POST', '/v1/reload');
    })();
    const writers = [0, 1, 2].map(async (lane) => {
      for (let i = 0; Date.now() < deadline && i < 500; i++) {
        const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'race' })).body as { id: string; token: string };
        expect((await api(gate, 'DELETE', `/v1/sessions/${session.id}`)).status).toBe(204);
        revoked.push(session);
        if (lane === 0) {
          const version = i;
          expect((await api(gate, 'PUT', '/v1/environments/race', { access: 'custom', name: `v${version}`, allowedDomains: ['api.example.com'], allowedPorts: [upstream.port] })).status).toBe(200);
          lastVersion = version;
          expect((await api(gate, 'GET', '/v1/environments/race')).body.name).toBe(`v${version}`);
        }
      }
    });
    await Promise.all(writers);
    stop = true;
    await reloader;
    expect(revoked.length).toBeGreaterThan(10);
    expect((await api(gate, 'GET', '/v1/environments/race')).body.name).toBe(`v${lastVersion}`);
    const alive = [];
    for (const session of revoked) if ((await api(gate, 'GET', `/v1/sessions/${session.id}`)).status !== 404) alive.push(session.id);
    expect(alive).toEqual([]);
    const last = revoked.at(-1)!;
    expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(last.id, last.token)])).headers['x-deny-reason']).toBe('auth_invalid');
  });
});
