// The cap on open connections per session (rateLimit.maxConnections): one more tunnel or
// request gets 429 before anything is dialled, and a slot frees when a tunnel closes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { startGate, type Gate } from '../helpers/gate.js';
import { proxyRequest } from '../helpers/proxy-http.js';
import { basicAuth, parseResponseHead, rawConnect, type RawResponse } from '../helpers/raw.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A CONNECT whose socket stays open after the 200, for as long as the test holds it. */
function openTunnel(port: number, authority: string, session: TestSession): Promise<{ response: RawResponse; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let raw = '';
    const timer = setTimeout(() => reject(new Error('no CONNECT answer')), 10_000);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      raw += chunk.toString('latin1');
      if (raw.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve({ response: parseResponseHead(raw), socket });
      }
    });
    socket.write([`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, basicAuth(session.id, session.token), '', ''].join('\r\n'));
  });
}

describe('maxConnections per session', () => {
  let gate: Gate;
  let http: Upstream;
  let a: TestSession;
  let b: TestSession;
  const held: Socket[] = [];

  beforeAll(async () => {
    http = await startHttpUpstream();
    gate = await startGate({
      config: { upstream: { resolve: { 'api.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
      environments: [{ id: 'capped', access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [http.port], rateLimit: { maxConnections: 2 } }],
    });
    a = await addSession(gate, 'capped');
    b = await addSession(gate, 'capped');
  });

  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await gate?.stop();
    await http?.close();
  });

  it('a session at its cap gets 429 for one more tunnel and one more request, other sessions do not; it is served again when a tunnel closes', async () => {
    const authority = `api.example.com:${http.port}`;
    const first = await openTunnel(gate.proxyPort, authority, a);
    const second = await openTunnel(gate.proxyPort, authority, a);
    held.push(first.socket, second.socket);
    expect([first.response.status, second.response.status]).toEqual([200, 200]);
    // The tunnels carry traffic: a request through one of them reaches the upstream.
    first.socket.write(`GET /through-tunnel HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    for (let i = 0; i < 100 && !http.seen.some((s) => s.url === '/through-tunnel'); i++) await sleep(20);
    expect(http.seen.some((s) => s.url === '/through-tunnel')).toBe(true);

    const connectionsBefore = http.connections;
    const third = await rawConnect(gate.proxyPort, authority, [basicAuth(a.id, a.token)]);
    expect(third.status).toBe(429);
    expect(third.headers['x-deny-reason']).toBe('rate_limited');
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const request = await proxyRequest(gate.proxyPort, a, `http://${authority}/over-the-cap`);
    expect(request.status, 'an in-flight request holds a slot like a tunnel').toBe(429);
    await sleep(100);
    expect(http.connections, 'nothing was dialled for the refused ones').toBe(connectionsBefore);
    expect(http.seen.some((s) => s.url === '/over-the-cap')).toBe(false);

    const record = gate.decisions().find((d) => d.session === a.id && d.method === 'CONNECT' && d.reason === 'rate_limited');
    expect(record?.rule).toBe('limit:connections');
    expect(record?.limiter).toEqual({ scope: 'connections', limit: 2, open: 2 });

    const other = await openTunnel(gate.proxyPort, authority, b);
    held.push(other.socket);
    expect(other.response.status, 'the cap is per session').toBe(200);

    // Close one tunnel; once its close is recorded, its slot is free.
    second.socket.destroy();
    const closed = (): boolean => gate.decisions().some((d) => d.session === a.id && d.method === 'CONNECT' && d.decision === 'allow');
    for (let i = 0; i < 100 && !closed(); i++) await sleep(20);
    expect(closed()).toBe(true);
    const fourth = await openTunnel(gate.proxyPort, authority, a);
    held.push(fourth.socket);
    expect(fourth.response.status).toBe(200);
    const fifth = await rawConnect(gate.proxyPort, authority, [basicAuth(a.id, a.token)]);
    expect(fifth.status, 'at the cap again').toBe(429);
  });
});
