// Resource exhaustion: slow, silent, half-closed and oversized clients are cut or answered, and a
// good client is still served with normal latency while they try. Timeouts are set small in this
// gate (header 1 s, idle 2 s, 50 connections) so the cases run in seconds.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseResponseHead, rawExchange } from '../helpers/raw.js';
import { expectHealthy, expectNoSocketLeft, expectStillServing, rawClient, startBench, statusLines, type Bench, type RawClient } from './harness.js';

const headerTimeoutMs = 1_000;
const idleTimeoutMs = 2_000;
const maxConnections = 50;
// Node checks header deadlines every min(1 s, headerTimeoutMs): a slow client is cut between
// one and two periods after its deadline, plus scheduling noise on two busy cores.
const headerCutMs = headerTimeoutMs * 2 + 2_000;
const idleCutMs = idleTimeoutMs + 2_000;

let bench: Bench;
let P = 0;
let auth = '';

beforeAll(async () => {
  bench = await startBench({ config: { proxy: { headerTimeoutMs, idleTimeoutMs, maxConnections } } });
  P = bench.upstream.port;
  auth = bench.auth('app');
});
afterAll(async () => {
  await bench?.stop();
});
afterEach(async () => {
  await expectHealthy(bench);
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('slow clients', () => {
  it('slowloris: headers dribbled a byte at a time are cut after headerTimeoutMs, others served meanwhile', async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, () => rawClient(bench.gate.proxyPort)));
    const line = `GET http://allowed.test:${P}/slowloris HTTP/1.1\r\nHost: allowed.test:${P}\r\nX-Drip: `;
    let stop = false;
    const drips = clients.map(async (client) => {
      client.write(line);
      while (!stop && !client.socket.destroyed && !client.socket.readableEnded) {
        client.write('a');
        await sleep(100);
      }
    });
    try {
      await sleep(300);
      await expectStillServing(bench);
      const cuts = await Promise.all(clients.map((c) => c.closedWithin(headerCutMs)));
      expect(Math.max(...cuts)).toBeLessThan(headerCutMs);
      // Answered or cut, never forwarded.
      for (const client of clients) expect(statusLines(client.text()).filter((s) => s !== 408 && s !== 400)).toEqual([]);
      expect(bench.upstream.seen.some((s) => s.url === '/slowloris')).toBe(false);
    } finally {
      stop = true;
      await Promise.all(drips);
      for (const client of clients) client.destroy();
    }
  });

  it('a connection that never sends a byte is closed', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      await client.closedWithin(Math.max(headerCutMs, idleCutMs));
    } finally {
      client.destroy();
    }
  });

  it('a request line without its headers is cut after headerTimeoutMs', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/half-head HTTP/1.1\r\n`);
      await client.closedWithin(headerCutMs);
    } finally {
      client.destroy();
    }
  });

  it('a body that stalls is cut after idleTimeoutMs and its upstream request aborted', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`POST http://allowed.test:${P}/stalled-body HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\nContent-Length: 100000\r\n\r\n0123456789`);
      await sleep(200);
      await expectStillServing(bench);
      await client.closedWithin(idleCutMs);
      // The upstream never saw a complete request.
      expect(bench.upstream.seen.some((s) => s.url === '/stalled-body')).toBe(false);
    } finally {
      client.destroy();
    }
  });

  it('an idle CONNECT tunnel is closed after idleTimeoutMs', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`CONNECT allowed.test:${P} HTTP/1.1\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
      await client.closedWithin(idleCutMs);
    } finally {
      client.destroy();
    }
  });

  it('a tunnel in use for longer than idleTimeoutMs stays open, and is closed once it falls idle', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`CONNECT allowed.test:${P} HTTP/1.1\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
      // A request every 400 ms for twice the idle timeout: never idle for long, so never cut.
      const requests = Math.ceil((idleTimeoutMs * 2) / 400);
      for (let i = 1; i <= requests; i++) {
        client.write(`GET /busy/${i} HTTP/1.1\r\nHost: allowed.test:${P}\r\n\r\n`);
        await client.waitFor((t) => statusLines(t).length === i + 1);
        await sleep(400);
      }
      expect(client.socket.destroyed || client.socket.readableEnded).toBe(false);
      await client.closedWithin(idleCutMs);
    } finally {
      client.destroy();
    }
  });

  // Regression: Node re-armed the socket timeout at keepAliveTimeout (65 s) after each response.
  it('bypass of idleTimeoutMs: a kept-alive connection left idle after a response is closed', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/then-idle HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => statusLines(t).length === 1);
      await client.closedWithin(idleCutMs);
    } finally {
      client.destroy();
    }
  });
});

describe('half-open sockets', () => {
  // Node's HTTP server reads a FIN as the client going away (httpAllowHalfOpen is off): the
  // request is abandoned and the connection closed. docs/security.md lists this.
  it('a complete request then FIN: the client is treated as gone and the connection closed', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/half-close HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`);
      client.socket.end();
      await client.closedWithin(3_000);
      expect(statusLines(client.text()).filter((s) => s !== 200)).toEqual([]);
    } finally {
      client.destroy();
    }
  });

  it('half a request then FIN is closed without reaching the upstream', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`GET http://allowed.test:${P}/half-request HTTP/1.1\r\nHost: allo`);
      client.socket.end();
      await client.closedWithin(3_000);
      expect(bench.upstream.seen.some((s) => s.url === '/half-request')).toBe(false);
    } finally {
      client.destroy();
    }
  });

  it('a tunnel whose client ends its upload still delivers the download, then closes', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`CONNECT allowed.test:${P} HTTP/1.1\r\n${auth}\r\n\r\n`);
      await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
      client.write(`GET /bytes/300000 HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
      client.socket.end();
      await client.waitFor((t) => t.length > 300_000, 10_000);
      await client.closedWithin(idleCutMs);
    } finally {
      client.destroy();
    }
  });

  it('a client that vanishes mid-tunnel (RST) leaves nothing open', async () => {
    const client = await rawClient(bench.gate.proxyPort);
    client.write(`CONNECT allowed.test:${P} HTTP/1.1\r\n${auth}\r\n\r\n`);
    await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
    client.write(`GET /bytes/50000000 HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
    await client.waitFor((t) => t.length > 100_000);
    client.socket.resetAndDestroy();
    await expectNoSocketLeft(bench.gate);
  });
});

describe('connection cap', () => {
  it(`${maxConnections} idle connections fill proxy.maxConnections; the next is dropped; all are reclaimed`, async () => {
    const idle: RawClient[] = [];
    try {
      for (let i = 0; i < maxConnections; i++) idle.push(await rawClient(bench.gate.proxyPort));
      // The listener has seen them all before the extra one arrives.
      const deadline = Date.now() + 5_000;
      while ((await bench.gate.runtime.metrics.activeConnections.get()).values[0]!.value < maxConnections && Date.now() < deadline) await sleep(20);
      const extra = await rawClient(bench.gate.proxyPort);
      try {
        await extra.closedWithin(2_000);
        expect(extra.text()).toBe('');
      } finally {
        extra.destroy();
      }
      // The idle ones sent nothing: the header deadline reclaims every slot without help.
      const cuts = await Promise.all(idle.map((c) => c.closedWithin(Math.max(headerCutMs, idleCutMs) + 2_000)));
      expect(cuts).toHaveLength(maxConnections);
    } finally {
      for (const client of idle) client.destroy();
    }
  });
});

describe('oversized input', () => {
  it.each([
    ['one header over maxHeaderBytes', () => `GET http://allowed.test:${P}/huge HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\nX-Huge: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['many headers over maxHeaderBytes', () => `GET http://allowed.test:${P}/many HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n${Array.from({ length: 1_000 }, (_, i) => `X-H${i}: ${'b'.repeat(20)}`).join('\r\n')}\r\n\r\n`],
    ['a request line over maxHeaderBytes', () => `GET http://allowed.test:${P}/${'p'.repeat(20_000)} HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\n\r\n`],
    ['a CONNECT authority over maxHeaderBytes', () => `CONNECT ${'a'.repeat(20_000)}.test:${P} HTTP/1.1\r\n${auth}\r\n\r\n`],
  ])('%s is answered 400/431 and closed', async (_what, bytes) => {
    const before = bench.upstream.seen.length;
    const raw = await rawExchange(bench.gate.proxyPort, bytes());
    const response = parseResponseHead(raw);
    expect([400, 431]).toContain(response.status);
    expect(response.headers['x-deny-reason']).toBe('bad_request');
    expect(bench.upstream.seen.length).toBe(before);
  });

  it('a huge request body streams to the upstream without being buffered', async () => {
    const size = 20 * 1024 * 1024;
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`POST http://allowed.test:${P}/big-body HTTP/1.1\r\nHost: allowed.test:${P}\r\n${auth}\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      for (let i = 0; i < size / chunk.length; i++) {
        if (!client.socket.write(chunk)) await new Promise((resolve) => client.socket.once('drain', resolve));
      }
      await client.waitFor((t) => t.includes('"url":"/big-body"'), 20_000);
      expect(bench.upstream.seen.find((s) => s.url === '/big-body')?.bodyBytes).toBe(size);
    } finally {
      client.destroy();
    }
  });
});
