// Request buckets on the wire: a burst from one session gets exactly `burst` answers and 429s
// with a Retry-After for the rest, is served again after the refill, and never slows another
// session. Plain HTTP with Node's http client, CONNECT with raw sockets.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../helpers/certs.js';
import { startGate, type Gate } from '../helpers/gate.js';
import { proxyRequest, type ProxiedResponse } from '../helpers/proxy-http.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterOf(response: ProxiedResponse): number {
  const value = response.headers['retry-after'];
  expect(typeof value, 'Retry-After present').toBe('string');
  expect(value, 'Retry-After is delay-seconds (RFC 9110 §10.2.3)').toMatch(/^\d+$/);
  return Number(value);
}

describe('per-session bucket (environment override: requestsPerSecond 5, burst 10)', () => {
  let gate: Gate;
  let http: Upstream;
  let https: Upstream;
  let a: TestSession;
  let b: TestSession;
  let c: TestSession;

  beforeAll(async () => {
    const ca = createTestCa();
    http = await startHttpUpstream();
    https = await startHttpsUpstream(ca.issue(['api.example.com']));
    gate = await startGate({
      config: {
        upstream: { resolve: { 'api.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] },
        limits: { requestsPerSecond: 4, burst: 6 },
      },
      environments: [
        { id: 'limited', access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [http.port, https.port], rateLimit: { requestsPerSecond: 5, burst: 10 } },
        { id: 'plain', access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [http.port, https.port] },
      ],
    });
    a = await addSession(gate, 'limited');
    b = await addSession(gate, 'limited');
    c = await addSession(gate, 'plain');
  });

  afterAll(async () => {
    await gate?.stop();
    await http?.close();
    await https?.close();
  });

  const url = (): string => `http://api.example.com:${http.port}/ok`;

  it('a burst of 30 gets exactly 10 answers and 20 refusals with Retry-After; another session is unaffected; after the refill it is served again', async () => {
    const seenBefore = http.seen.length;
    const bBefore = await Promise.all([1, 2, 3].map(() => proxyRequest(gate.proxyPort, b, url())));
    expect(bBefore.map((r) => r.status)).toEqual([200, 200, 200]);

    const [burst, bDuring] = await Promise.all([
      Promise.all(Array.from({ length: 30 }, () => proxyRequest(gate.proxyPort, a, url()))),
      Promise.all([1, 2, 3].map(() => proxyRequest(gate.proxyPort, b, url()))),
    ]);
    const served = burst.filter((r) => r.status === 200);
    const refused = burst.filter((r) => r.status === 429);
    expect(served).toHaveLength(10);
    expect(refused).toHaveLength(20);
    expect(bDuring.map((r) => r.status), 'the other session keeps its own bucket').toEqual([200, 200, 200]);
    // Only the answered requests reached the upstream.
    expect(http.seen.length - seenBefore).toBe(10 + 6);

    let longest = 0;
    for (const response of refused) {
      expect(response.headers['x-deny-reason']).toBe('rate_limited');
      expect(response.body.toString()).toMatch(/rate limit/);
      const seconds = retryAfterOf(response);
      // The window is burst / requestsPerSecond = 2 s: the bucket is full again within it.
      expect(seconds).toBeGreaterThanOrEqual(1);
      expect(seconds).toBeLessThanOrEqual(2);
      longest = Math.max(longest, seconds);
    }

    // Every refusal logged with the state of the bucket that refused it.
    const limited = gate.decisions().filter((d) => d.session === a.id && d.reason === 'rate_limited');
    expect(limited).toHaveLength(20);
    for (const record of limited) {
      expect(record.decision).toBe('deny');
      expect(record.rule).toBe('limit:session');
      expect(record.limiter).toMatchObject({ scope: 'session', burst: 10, perSecond: 5, remaining: 0 });
      expect((record.limiter as { msBeforeNext: number }).msBeforeNext).toBeGreaterThan(0);
      expect((record.limiter as { consumed: number }).consumed).toBeGreaterThan(10);
    }

    await sleep(longest * 1000 + 100);
    const again = await Promise.all(Array.from({ length: 12 }, () => proxyRequest(gate.proxyPort, a, url())));
    expect(again.filter((r) => r.status === 200), 'the refill is a whole burst').toHaveLength(10);
    expect(again.filter((r) => r.status === 429)).toHaveLength(2);
    const bAfter = await proxyRequest(gate.proxyPort, b, url());
    expect(bAfter.status).toBe(200);
  });

  it('CONNECT over the config bucket (burst 6) is refused before the tunnel opens: no upstream connection, no 200', async () => {
    const connectionsBefore = https.connections;
    const answers = await Promise.all(Array.from({ length: 9 }, () => rawConnect(gate.proxyPort, `api.example.com:${https.port}`, [basicAuth(c.id, c.token)])));
    const opened = answers.filter((r) => r.status === 200);
    const refused = answers.filter((r) => r.status === 429);
    expect(opened).toHaveLength(6);
    expect(refused).toHaveLength(3);
    for (const response of refused) {
      expect(response.headers['x-deny-reason']).toBe('rate_limited');
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(response.raw).not.toMatch(/Connection Established/);
    }
    // The upstream saw the six tunnels and nothing of the three refused.
    for (let i = 0; i < 50 && https.connections - connectionsBefore < 6; i++) await sleep(20);
    await sleep(100);
    expect(https.connections - connectionsBefore).toBe(6);
  });
});

describe('per-host and per-environment buckets', () => {
  let gate: Gate;
  let http: Upstream;
  let x: TestSession;
  let y: TestSession;
  const hosts = ['one.example.com', 'two.example.com', 'three.example.com'];

  beforeAll(async () => {
    http = await startHttpUpstream();
    gate = await startGate({
      config: {
        upstream: { resolve: Object.fromEntries(hosts.map((h) => [h, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'] },
        // Windows of 3 s and 3.5 s: long enough that the sequential requests below fall in one.
        limits: { requestsPerSecond: 100, burst: 100, perHostRequestsPerSecond: 1, perHostBurst: 3, environmentRequestsPerSecond: 2, environmentBurst: 7 },
      },
      environments: [{ id: 'scoped', access: 'custom', allowedDomains: hosts, allowedPorts: [http.port] }],
    });
    x = await addSession(gate, 'scoped');
    y = await addSession(gate, 'scoped');
  });

  afterAll(async () => {
    await gate?.stop();
    await http?.close();
  });

  it('a session that floods one host is refused for that host only; the environment as a whole is capped across sessions', async () => {
    const statuses = async (session: TestSession, host: string, count: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < count; i++) out.push((await proxyRequest(gate.proxyPort, session, `http://${host}:${http.port}/`)).status);
      return out;
    };
    expect(await statuses(x, 'one.example.com', 4)).toEqual([200, 200, 200, 429]);
    expect(await statuses(x, 'two.example.com', 3), 'another host has its own bucket').toEqual([200, 200, 200]);
    // Six answered in the environment so far (a refusal by the host bucket costs the
    // environment nothing): one left of seven, whichever session asks.
    expect(await statuses(y, 'three.example.com', 3)).toEqual([200, 429, 429]);

    const scopes = gate.decisions().filter((d) => d.reason === 'rate_limited').map((d) => (d.limiter as { scope: string }).scope);
    expect(scopes).toEqual(['host', 'environment', 'environment']);
  });
});
