// Two replicas (two Runtimes, each with its own proxy listener and Redis connections) sharing
// one real redis-server: policy and sessions written on one are in force on the other within
// a second; an outage keeps the last policy serving and refuses writes; recovery resyncs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { hashToken, newSessionCredentials } from '../../src/state/sessions.js';
import { StoreUnavailableError } from '../../src/state/store.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';
import { eventually } from '../helpers/eventually.js';

let redis: RedisServer;
let upstream: Upstream;
let a: Gate;
let b: Gate;
const keyPrefix = `t${Date.now()}:`;


beforeAll(async () => {
  redis = await startRedis();
  upstream = await startHttpUpstream();
  const config = {
    store: { backend: 'redis', redis: { url: redis.url, keyPrefix } },
    upstream: { resolve: { 'registry.npmjs.org': '127.0.0.1', 'api.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] },
  };
  a = await startGate({ config });
  b = await startGate({ config });
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.stop();
  await upstream?.close();
});

async function newSession(gate: Gate, environment: string) {
  const { id, token } = newSessionCredentials();
  await gate.runtime.store.putSession({ id, environment, tokenHash: hashToken(token), createdAt: new Date().toISOString() });
  return { id, token, auth: basicAuth(id, token) };
}

describe('replicas sharing Redis', () => {
  it('an environment written on A is in force on B within a second; a session made on A works on B', async () => {
    await a.runtime.store.putEnvironment({ id: 'web', name: 'web', access: 'custom', allowedDomains: ['api.example.com'], includeDefaults: false, deniedDomains: [], archived: false, allowedPorts: [upstream.port] });
    const session = await newSession(a, 'web');
    const elapsed = await eventually(async () => (await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 200, 1_000);
    expect(elapsed).toBeLessThan(1_000);
    expect((await rawConnect(b.proxyPort, `registry.npmjs.org:${upstream.port}`, [session.auth])).headers['x-deny-reason']).toBe('host_not_allowed');
  });

  it('revoking a session on B stops it on A', async () => {
    const session = await newSession(a, 'web');
    await eventually(async () => (await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 200, 1_000);
    await b.runtime.store.deleteSession(session.id);
    await eventually(async () => (await rawConnect(a.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 407, 1_000);
  });

  it("a session's burst split across A and B gets the shared burst, not twice it", async () => {
    await a.runtime.store.putEnvironment({ id: 'limited', name: 'limited', access: 'custom', allowedDomains: ['api.example.com'], includeDefaults: false, deniedDomains: [], archived: false, allowedPorts: [upstream.port], rateLimit: { requestsPerSecond: 1, burst: 6 } });
    const session = await newSession(a, 'limited');
    await eventually(() => b.runtime.environment('limited') !== undefined && b.runtime.store.getSession(session.id) !== undefined, 1_000);
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) statuses.push((await rawConnect((i % 2 ? b : a).proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(6);
    expect(statuses.filter((s) => s === 429)).toHaveLength(8);
  });

  it('a session at maxConnections on A gets 429 for one more tunnel on B, and is served again when one closes', async () => {
    await a.runtime.store.putEnvironment({ id: 'capped', name: 'capped', access: 'custom', allowedDomains: ['api.example.com'], includeDefaults: false, deniedDomains: [], archived: false, allowedPorts: [upstream.port], rateLimit: { maxConnections: 2 } });
    const session = await newSession(a, 'capped');
    await eventually(() => b.runtime.environment('capped') !== undefined && b.runtime.store.getSession(session.id) !== undefined, 1_000);
    const hold = (gate: Gate) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: gate.proxyPort });
        socket.once('error', reject);
        socket.once('data', (d: Buffer) => (d.toString().startsWith('HTTP/1.1 200') ? resolve(socket) : reject(new Error(d.toString()))));
        socket.write(`CONNECT api.example.com:${upstream.port} HTTP/1.1\r\n${session.auth}\r\n\r\n`);
      });
    const held = [await hold(a), await hold(a)];
    const refused = await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth]);
    expect(refused.status).toBe(429);
    expect(refused.headers['x-deny-reason']).toBe('rate_limited');
    held[0]!.destroy();
    await eventually(async () => (await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 200, 5_000);
    held[1]!.destroy();
  });

  it('a change whose announcement never arrives is in force on both replicas within the version check (2 s)', async () => {
    const session = await newSession(a, 'web');
    await eventually(async () => (await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 200, 1_000);
    const web = a.runtime.store.getEnvironment('web')!;
    // Written straight into Redis, as a replica's write whose PUBLISH was lost: the value and
    // the counter, no announcement.
    const direct = new Redis(redis.url);
    try {
      await direct.multi().hset(`${keyPrefix}environments`, 'web', JSON.stringify({ ...web, allowedDomains: ['registry.npmjs.org'] })).incr(`${keyPrefix}version`).exec();
    } finally {
      direct.disconnect();
    }
    for (const gate of [a, b]) {
      await eventually(async () => (await rawConnect(gate.proxyPort, `registry.npmjs.org:${upstream.port}`, [session.auth])).status === 200, 6_000);
      expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status).toBe(403);
    }
    await a.runtime.store.putEnvironment(web);
    await eventually(async () => (await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 200, 1_000);
  });

  it('Redis down: both keep serving under the last policy and writes fail; back: writes work and both agree', async () => {
    const session = await newSession(a, 'web');
    await eventually(async () => (await rawConnect(b.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status === 200, 1_000);
    await redis.stop();
    for (const gate of [a, b]) {
      expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status).toBe(200);
      expect((await rawConnect(gate.proxyPort, `registry.npmjs.org:${upstream.port}`, [session.auth])).status).toBe(403);
    }
    await expect(a.runtime.store.putEnvironment({ ...a.runtime.store.getEnvironment('web')!, allowedDomains: ['registry.npmjs.org'] })).rejects.toBeInstanceOf(StoreUnavailableError);
    await redis.start();
    await eventually(async () => {
      try {
        await a.runtime.store.putEnvironment({ ...a.runtime.store.getEnvironment('web')!, allowedDomains: ['registry.npmjs.org'] });
        return true;
      } catch {
        return false;
      }
    }, 30_000);
    for (const gate of [a, b]) {
      await eventually(async () => (await rawConnect(gate.proxyPort, `registry.npmjs.org:${upstream.port}`, [session.auth])).status === 200, 30_000);
      expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [session.auth])).status).toBe(403);
    }
  }, 120_000);
});
