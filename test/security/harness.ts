// The hostile-input suite's bench: a real gate whose names all map to loopback, an upstream on
// 127.0.0.3 (the only exempt address) and a decoy on 127.0.0.2 that must never see a byte, and
// the two checks every case ends with: the proxy still serves a good client, and no socket
// was left open.

import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth } from '../helpers/raw.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

export interface Bench {
  gate: Gate;
  upstream: Upstream;
  decoy: Upstream;
  /** Sessions by environment: app (custom), other (custom), full. */
  sessions: Record<'app' | 'other' | 'full', TestSession>;
  auth(environment: 'app' | 'other' | 'full'): string;
  stop(): Promise<void>;
}

/** Names the suite uses; none of them is ever looked up in real DNS. */
export const pinned = {
  'allowed.test': '127.0.0.3',
  'api.example.com': '127.0.0.3',
  'xn--bcher-kva.example': '127.0.0.3',
  'other.test': '127.0.0.3',
  'evil.test': '127.0.0.2',
};

/** A resolver that knows nothing: a name the policy lets through by mistake fails here, not on the internet. */
export const noDns = async (host: string): Promise<{ address: string }[]> => {
  throw Object.assign(new Error(`no DNS in tests: ${host}`), { code: 'ENOTFOUND' });
};

export async function startBench(options: { config?: Record<string, unknown> } = {}): Promise<Bench> {
  const upstream = await startHttpUpstream('127.0.0.3');
  const decoy = await startHttpUpstream('127.0.0.2');
  const ports = [upstream.port, decoy.port];
  const { upstream: upstreamConfig, auth, proxy, ...rest } = (options.config ?? {}) as Record<string, Record<string, unknown>>;
  const gate = await startGate({
    config: {
      ...rest,
      // Merged, not replaced: a `proxy` key without `listen` would fall back to port 3128.
      proxy: { listen: '127.0.0.1:0', ...proxy },
      auth: { required: true, ...auth },
      upstream: { resolve: pinned, allowPrivateNetworks: ['127.0.0.3/32'], ...upstreamConfig },
    },
    environments: [
      { id: 'app', access: 'custom', allowedDomains: ['allowed.test', 'api.example.com', 'xn--bcher-kva.example'], allowedPorts: ports },
      { id: 'other', access: 'custom', allowedDomains: ['other.test'], allowedPorts: ports },
      { id: 'full', access: 'full' },
    ],
    admin: false,
  });
  gate.runtime.context.dial.lookup = noDns;
  const sessions = { app: await addSession(gate, 'app'), other: await addSession(gate, 'other'), full: await addSession(gate, 'full') };
  return {
    gate,
    upstream,
    decoy,
    sessions,
    auth: (environment) => basicAuth(sessions[environment].id, sessions[environment].token),
    async stop() {
      await gate.stop();
      await upstream.close();
      await decoy.close();
    },
  };
}

/** A good client, on its own connection: GET http://allowed.test/ through the proxy answers 200. */
export async function expectStillServing(bench: Bench): Promise<void> {
  const { gate, upstream, sessions } = bench;
  const started = performance.now();
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: gate.proxyPort,
      method: 'GET',
      path: `http://allowed.test:${upstream.port}/still-serving`,
      headers: { host: `allowed.test:${upstream.port}`, 'proxy-authorization': `Basic ${Buffer.from(`${sessions.app.id}:${sessions.app.token}`).toString('base64')}`, connection: 'close' },
      agent: false,
      timeout: 10_000,
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('still-serving request timed out')));
    req.on('error', reject);
    req.end();
  });
  expect(status).toBe(200);
  // "Normal latency", generously: two noisy cores, but not a queue behind an attacker.
  expect(performance.now() - started).toBeLessThan(3_000);
}

export async function activeConnections(gate: Gate): Promise<number> {
  const metric = await gate.runtime.metrics.activeConnections.get();
  return metric.values[0]?.value ?? 0;
}

/** Every client socket the case opened is gone from the proxy (gauge back to 0, no registered tunnel or request). */
export async function expectNoSocketLeft(gate: Gate, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let open = await activeConnections(gate);
  while ((open > 0 || gate.runtime.connections.size > 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    open = await activeConnections(gate);
  }
  expect({ clientSockets: open, registered: gate.runtime.connections.size }).toEqual({ clientSockets: 0, registered: 0 });
}

/** The end of every case. */
export async function expectHealthy(bench: Bench): Promise<void> {
  await expectStillServing(bench);
  await expectNoSocketLeft(bench.gate);
}

/** A client socket kept open across several exchanges, for keep-alive and timing cases. */
export interface RawClient {
  socket: Socket;
  /** Everything received so far, latin1. */
  text(): string;
  write(bytes: string | Buffer): void;
  /** Resolves once `predicate(text)` holds; rejects after `timeoutMs`. */
  waitFor(predicate: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with the ms from call to the proxy closing the connection; rejects after `timeoutMs`. */
  closedWithin(timeoutMs: number): Promise<number>;
  destroy(): void;
}

export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let closed = false;
    const listeners = new Set<() => void>();
    const notify = (): void => {
      for (const listener of [...listeners]) listener();
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      notify();
    });
    socket.on('close', () => {
      closed = true;
      notify();
    });
    socket.on('end', notify);
    socket.on('error', () => {});
    const text = (): string => Buffer.concat(chunks).toString('latin1');
    const until = (done: () => boolean, timeoutMs: number, what: string): Promise<void> =>
      new Promise((ok, fail) => {
        if (done()) return ok();
        const check = (): void => {
          if (!done()) return;
          clearTimeout(timer);
          listeners.delete(check);
          ok();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          fail(new Error(`${what} not within ${timeoutMs} ms; received: ${JSON.stringify(text().slice(0, 300))}`));
        }, timeoutMs);
        listeners.add(check);
      });
    socket.once('connect', () =>
      resolve({
        socket,
        text,
        write: (bytes) => socket.write(bytes),
        async waitFor(predicate, timeoutMs = 5_000) {
          await until(() => predicate(text()), timeoutMs, 'expected bytes');
          return text();
        },
        async closedWithin(timeoutMs) {
          const started = performance.now();
          await until(() => closed || socket.readableEnded, timeoutMs, 'close by the proxy');
          return performance.now() - started;
        },
        destroy: () => socket.destroy(),
      }),
    );
    socket.once('error', reject);
  });
}

/** Counts complete HTTP response heads in a byte stream. */
export function statusLines(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}
