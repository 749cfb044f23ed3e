// The upstream half of plain-HTTP forwarding (src/proxy/upstream-http.ts): what the proxy's own
// HTTP client must get right. Pooled connections belong to the address they were dialled to; a
// client that stops reading stops the upstream; a client that leaves cuts the upstream
// exchange; interim responses and `Expect: 100-continue` do not break an exchange.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, createServer as createHttpServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { cleanEnv, run } from '../helpers/run.js';

const MiB = 1024 * 1024;

/** An upstream on `host` that records, per connection, the Host headers it served. */
interface RecordingUpstream {
  server: Server;
  hostsPerConnection: string[][];
  expectHeaders: (string | undefined)[];
  bodies: { bytes: number; sha: string }[];
}

function listen(server: Server | NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(port, host, () => resolve((server.address() as { port: number }).port)));
}

function recordingUpstream(): RecordingUpstream {
  const record: RecordingUpstream = { server: undefined as unknown as Server, hostsPerConnection: [], expectHeaders: [], bodies: [] };
  const served = new WeakMap<Socket, string[]>();
  record.server = createHttpServer((req, res) => {
    let hosts = served.get(req.socket);
    if (!hosts) {
      hosts = [];
      served.set(req.socket, hosts);
      record.hostsPerConnection.push(hosts);
    }
    hosts.push(req.headers.host ?? '');
    record.expectHeaders.push(req.headers.expect);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      record.bodies.push({ bytes, sha: hash.digest('hex') });
      res.end(`served ${req.headers.host}`);
    });
  });
  return record;
}

function get(proxyPort: number, url: string, agent?: Agent): Promise<{ status: number; body: string }> {
  const { host } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host }, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let gate: Gate;
let first: RecordingUpstream;
let second: RecordingUpstream;
let port: number;
const closers: (() => unknown)[] = [];

/**
 * An upstream on a bare socket, so responses are framed exactly as a test writes them: `answer`
 * gets the path of every request head (requests without a body) and the socket to write to.
 */
function rawUpstream(answer: (path: string, socket: Socket) => void): NetServer {
  return createServer((socket) => {
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        const head = buffered.slice(0, buffered.indexOf('\r\n\r\n'));
        buffered = buffered.slice(head.length + 4);
        answer(head.split(' ')[1] as string, socket);
      }
    });
  });
}

/** A gate that allows a.test, mapped to `server` listening on 127.0.0.1 (closed after the file). */
async function gateInFrontOf(server: Server | NetServer): Promise<{ gate: Gate; port: number }> {
  const port = await listen(server, 0, '127.0.0.1');
  closers.push(() => server.close());
  const gate = await startGate({
    config: { upstream: { resolve: { 'a.test': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
    environments: [{ id: 'default', access: 'custom', allowedDomains: ['a.test'], allowedPorts: [port] }],
  });
  return { gate, port };
}

beforeAll(async () => {
  // The same port on two loopback addresses: a.test and b.test differ only in the address.
  first = recordingUpstream();
  port = await listen(first.server, 0, '127.0.0.1');
  second = recordingUpstream();
  await listen(second.server, port, '127.0.0.2');
  closers.push(
    () => first.server.close(),
    () => second.server.close(),
  );
  gate = await startGate({
    config: { upstream: { resolve: { 'a.test': '127.0.0.1', 'b.test': '127.0.0.2', 'c.test': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32', '127.0.0.2/32'] } },
    environments: [{ id: 'default', access: 'custom', allowedDomains: ['a.test', 'b.test', 'c.test'], allowedPorts: [port] }],
  });
});

afterAll(async () => {
  await gate?.stop();
  for (const close of closers) close();
});

describe('plain HTTP through the proxy’s upstream client', () => {
  it('a pooled upstream connection carries requests only for the address it was dialled to', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 12; i++) {
        const host = ['a.test', 'b.test', 'c.test'][i % 3] as string;
        const answer = await get(gate.proxyPort, `http://${host}:${port}/${i}`, agent);
        expect(answer).toEqual({ status: 200, body: `served ${host}:${port}` });
      }
    } finally {
      agent.destroy();
    }
    const onFirst = first.hostsPerConnection.flat();
    const onSecond = second.hostsPerConnection.flat();
    expect(onSecond).toEqual(Array(4).fill(`b.test:${port}`));
    expect(new Set(onFirst)).toEqual(new Set([`a.test:${port}`, `c.test:${port}`]));
    expect(onFirst).toHaveLength(8);
    // Kept alive upstream too: fewer connections than requests (one client connection, in turn).
    expect(first.hostsPerConnection.length).toBeLessThan(8);
  });

  it('`Expect: 100-continue` from curl: the body goes through, and the upstream is not asked again', async () => {
    const dir = tempDir();
    const file = join(dir, 'upload.bin');
    const content = Buffer.alloc(3 * MiB, 0x5a);
    writeFileSync(file, content);
    const before = first.bodies.length;
    const result = await run('curl', ['-sS', '--max-time', '30', '--proxy', gate.proxyUrl, '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://a.test:${port}/upload`], { env: cleanEnv(), timeoutMs: 40_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`served a.test:${port}`);
    expect(first.bodies.slice(before)).toEqual([{ bytes: content.length, sha: createHash('sha256').update(content).digest('hex') }]);
    expect(first.expectHeaders.at(-1)).toBeUndefined();
  });

  it('interim responses (103 Early Hints) are passed over; the client gets the final answer and the connection stays usable', async () => {
    const raw = rawUpstream((_path, socket) => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'));
    const { gate: hinted, port: rawPort } = await gateInFrontOf(raw);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) expect(await get(hinted.proxyPort, `http://a.test:${rawPort}/`, agent)).toEqual({ status: 200, body: 'final' });
    } finally {
      agent.destroy();
      await hinted.stop();
    }
  });

  it('responses framed every way (HEAD, 204, 304, chunked, close-delimited) leave one kept-alive client connection in step', async () => {
    // A raw upstream, so the framing is exactly as written here, whatever Node's server would do.
    const answers: Record<string, string> = {
      '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
      '/204': 'HTTP/1.1 204 No Content\r\n\r\n',
      '/304': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n',
      '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      '/close': 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the upstream closes',
    };
    const raw = rawUpstream((path, socket) => {
      socket.write(answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      if (path === '/close') socket.end();
    });
    const { gate: framed, port: rawPort } = await gateInFrontOf(raw);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (method: string, path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: framed.proxyPort, method, path: `http://a.test:${rawPort}${path}`, headers: { host: `a.test:${rawPort}` }, agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const seen = [];
      for (const [method, path] of [['HEAD', '/head'], ['GET', '/204'], ['GET', '/304'], ['GET', '/chunked'], ['GET', '/close'], ['GET', '/chunked'], ['HEAD', '/head']] as const) seen.push(await ask(method, path).catch((e: Error) => ({ status: -1, body: `${method} ${path}: ${e.message}` })));
      expect(seen).toEqual([
        { status: 200, body: '' },
        { status: 204, body: '' },
        { status: 304, body: '' },
        { status: 200, body: 'hello world' },
        { status: 200, body: 'until the upstream closes' },
        { status: 200, body: 'hello world' },
        { status: 200, body: '' },
      ]);
    } finally {
      agent.destroy();
      await framed.stop();
    }
  });

  it('a body the client sends chunked goes upstream chunked, byte for byte', async () => {
    const parts = [Buffer.alloc(70_000, 1), Buffer.from('middle'), Buffer.alloc(200_000, 2)];
    const whole = Buffer.concat(parts);
    const before = first.bodies.length;
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // No Content-Length: Node's client sends the body chunked.
      const req = request({ host: '127.0.0.1', port: gate.proxyPort, method: 'POST', path: `http://a.test:${port}/chunked-upload`, headers: { host: `a.test:${port}` } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (const part of parts) req.write(part);
      req.end();
    });
    expect(answer).toEqual({ status: 200, body: `served a.test:${port}` });
    expect(first.bodies.slice(before)).toEqual([{ bytes: whole.length, sha: createHash('sha256').update(whole).digest('hex') }]);
  });

  it('bytes an upstream sends after its response are never read as the answer to the next request', async () => {
    let asked = 0;
    const raw = rawUpstream((_path, socket) => {
      asked += 1;
      // The first answer carries a whole unrequested response behind it, the second the start of one.
      if (asked === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled');
      else if (asked === 2) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfresh2HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Smuggled: ');
      else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfresh${asked}`);
    });
    const { gate: desync, port: rawPort } = await gateInFrontOf(raw);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(desync.proxyPort, `http://a.test:${rawPort}/1`, agent)).toEqual({ status: 200, body: 'first' });
      expect(await get(desync.proxyPort, `http://a.test:${rawPort}/2`, agent)).toEqual({ status: 200, body: 'fresh2' });
      expect(await get(desync.proxyPort, `http://a.test:${rawPort}/3`, agent)).toEqual({ status: 200, body: 'fresh3' });
      expect(await get(desync.proxyPort, `http://a.test:${rawPort}/4`, agent)).toEqual({ status: 200, body: 'fresh4' });
    } finally {
      agent.destroy();
      await desync.stop();
    }
  });

  it('a kept-alive upstream connection the server closes while idle is not used again', async () => {
    let connections = 0;
    const raw = rawUpstream((path, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
      // Kept alive by the headers, closed by the server soon after.
      setTimeout(() => socket.end(), 30);
    });
    raw.on('connection', () => (connections += 1));
    const { gate: closing, port: rawPort } = await gateInFrontOf(raw);
    try {
      for (const path of ['/one', '/two', '/three']) {
        expect(await get(closing.proxyPort, `http://a.test:${rawPort}${path}`)).toEqual({ status: 200, body: path });
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(connections).toBe(3);
    } finally {
      await closing.stop();
    }
  });

  it('an upstream that answers before reading the body: the client gets the answer, and the next request a new connection', async () => {
    let connections = 0;
    const early = createServer((socket) => {
      connections += 1;
      socket.on('error', () => {});
      let answered = false;
      socket.on('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        if (!answered && text.startsWith('POST')) {
          answered = true;
          socket.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo much');
        } else if (text.startsWith('GET')) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      });
    });
    const { gate: refusing, port: earlyPort } = await gateInFrontOf(early);
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: refusing.proxyPort, method: 'POST', path: `http://a.test:${earlyPort}/`, headers: { host: `a.test:${earlyPort}`, 'content-length': String(8 * MiB) } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', () => undefined);
        req.write(Buffer.alloc(64 * 1024));
        // The rest of the body never comes: the answer must not wait for it.
        void reject;
      });
      expect(answer).toEqual({ status: 413, body: 'too much' });
      expect(await get(refusing.proxyPort, `http://a.test:${earlyPort}/after`)).toEqual({ status: 200, body: 'ok' });
      expect(connections).toBe(2);
    } finally {
      await refusing.stop();
    }
  });

  it('an idle upstream connection is kept a second less than the server says it keeps one (`Keep-Alive: timeout=N`), and no longer', async () => {
    for (const seconds of [1, 2]) {
      let connections = 0;
      const raw = rawUpstream((_path, socket) => socket.write(`HTTP/1.1 200 OK\r\nKeep-Alive: timeout=${seconds}\r\nContent-Length: 2\r\n\r\nok`));
      raw.on('connection', () => (connections += 1));
      const { gate: kept, port: rawPort } = await gateInFrontOf(raw);
      const ask = async (): Promise<void> => expect(await get(kept.proxyPort, `http://a.test:${rawPort}/`)).toEqual({ status: 200, body: 'ok' });
      try {
        await ask();
        await ask();
        // timeout=1: not kept at all; timeout=2: kept for a second.
        expect(connections).toBe(seconds === 1 ? 2 : 1);
        await new Promise((r) => setTimeout(r, 1_300));
        await ask();
        expect(connections).toBe(seconds === 1 ? 3 : 2);
      } finally {
        await kept.stop();
      }
    }
  });

  it('an upstream that dies mid-body: the client sees a cut, not a short body passed off as whole, and the decision says so', async () => {
    const dying = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b');
        setTimeout(() => socket.destroy(), 50);
      });
    });
    const { gate: cut, port: dyingPort } = await gateInFrontOf(dying);
    try {
      const outcome = await new Promise<{ status: number; received: string; complete: boolean }>((resolve) => {
        const req = request({ host: '127.0.0.1', port: cut.proxyPort, path: `http://a.test:${dyingPort}/`, headers: { host: `a.test:${dyingPort}` } }, (res) => {
          let received = '';
          res.on('data', (c: Buffer) => (received += c.toString()));
          res.on('close', () => resolve({ status: res.statusCode ?? 0, received, complete: res.complete }));
        });
        req.on('error', () => undefined);
        req.end();
      });
      expect(outcome).toEqual({ status: 200, received: 'only ten b', complete: false });
      await eventually(() => cut.decisions().some((d) => String(d.detail).startsWith('upstream failed mid-response')), 5_000);
    } finally {
      await cut.stop();
    }
  });

  it('a client that stops reading stops the upstream; when it reads again every byte arrives in order', async () => {
    // An upstream that writes as fast as it can, and counts what it got rid of.
    const total = 96 * MiB;
    let flushed = 0;
    const fast = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          const chunk = Buffer.alloc(64 * 1024, (sent / (64 * 1024)) & 0xff);
          sent += chunk.length;
          const more = res.write(chunk, () => {
            flushed += chunk.length;
          });
          if (!more) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const { gate: slow, port: fastPort } = await gateInFrontOf(fast);
    try {
      const { received, bytes, ordered } = await new Promise<{ received: number; bytes: number; ordered: boolean }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: slow.proxyPort, path: `http://a.test:${fastPort}/`, headers: { host: `a.test:${fastPort}` } }, (res: IncomingMessage) => {
          let bytes = 0;
          let ordered = true;
          let received = -1;
          res.on('data', (chunk: Buffer) => {
            // Every byte of the n-th 64 KiB block is n & 0xff.
            for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] !== (Math.floor((bytes + i) / (64 * 1024)) & 0xff)) ordered = false;
            bytes += chunk.length;
            if (received < 0) {
              received = bytes;
              res.pause();
              void (async () => {
                let last = -1;
                for (let i = 0; i < 40 && flushed !== last; i++) {
                  last = flushed;
                  await new Promise((r) => setTimeout(r, 250));
                }
                received = flushed;
                res.resume();
              })();
            }
          });
          res.on('end', () => resolve({ received, bytes, ordered }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      expect(received, 'the upstream kept sending while nobody read').toBeLessThan(48 * MiB);
      expect(bytes).toBe(total);
      expect(ordered).toBe(true);
    } finally {
      await slow.stop();
    }
  });

  it('a client that leaves mid-response cuts the upstream exchange, and the decision says so', async () => {
    let upstreamClosed = false;
    const endless = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(1024, 1)), 10);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed = true;
      });
    });
    const { gate: leaving, port: endlessPort } = await gateInFrontOf(endless);
    try {
      const client = connect(leaving.proxyPort, '127.0.0.1');
      client.write(`GET http://a.test:${endlessPort}/ HTTP/1.1\r\nHost: a.test:${endlessPort}\r\n\r\n`);
      await new Promise<void>((resolve) => client.once('data', () => resolve()));
      client.destroy();
      await eventually(() => upstreamClosed, 5_000);
      await eventually(() => leaving.decisions().some((d) => d.detail === 'client closed early'), 5_000);
      expect(upstreamClosed).toBe(true);
    } finally {
      await leaving.stop();
    }
  });
});
