// The download half of a plain tunnel reads into one buffer shared by every tunnel, or during a
// download into a pooled chunk lent to the socket, and hands each read on in a pooled chunk
// (src/proxy/pooled-reads.ts). What could go wrong is a chunk
// reused while a write still holds it: bytes of one tunnel in another, or a stream that skips
// or repeats. Several tunnels at once, clients that stall and read again, every byte hashed on
// both ends; and a server that speaks first.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startGate, type Gate } from '../helpers/gate.js';

const MiB = 1024 * 1024;
let gate: Gate;
let source: Server;
let banner: Server;
const sent = new Map<string, string>();

/** Each connection names its stream in its first line, then gets `size` random bytes; the hash of what was sent is kept by name. */
function startSource(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let line = '';
    socket.on('data', function onLine(chunk: Buffer) {
      line += chunk.toString('latin1');
      if (!line.includes('\n')) return;
      socket.off('data', onLine);
      const [name, size] = line.trim().split(' ') as [string, string];
      const hash = createHash('sha256');
      let left = Number(size);
      const pump = (): void => {
        while (left > 0) {
          // Odd sizes, so reads and chunk boundaries fall everywhere.
          const piece = randomBytes(Math.min(left, 1 + Math.floor(Math.random() * 150_000)));
          left -= piece.length;
          hash.update(piece);
          if (!socket.write(piece)) return void socket.once('drain', pump);
        }
        sent.set(name, hash.digest('hex'));
        socket.end();
      };
      pump();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

function openTunnel(port: number): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(gate.proxyPort, '127.0.0.1');
    socket.once('error', reject);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      expect(head.subarray(0, end).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.write(`CONNECT registry.npmjs.org:${port} HTTP/1.1\r\nHost: registry.npmjs.org:${port}\r\n\r\n`);
  });
}

/** Downloads stream `name`; a stalling client pauses now and then, so the proxy's writes to it back up. */
async function download(name: string, size: number, stalls: boolean): Promise<{ bytes: number; sha: string }> {
  const { socket, rest } = await openTunnel(portOf(source));
  const hash = createHash('sha256');
  let bytes = rest.length;
  hash.update(rest);
  socket.write(`${name} ${size}\n`);
  let reads = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
    if (stalls && ++reads % 7 === 0) {
      socket.pause();
      setTimeout(() => socket.resume(), 20);
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('end', () => resolve());
    socket.once('error', reject);
  });
  socket.destroy();
  return { bytes, sha: hash.digest('hex') };
}

beforeAll(async () => {
  source = await startSource();
  banner = createServer((socket) => {
    socket.on('error', () => {});
    socket.end('220 ready, before any byte from the client\r\n');
  });
  await new Promise<void>((resolve) => banner.listen(0, '127.0.0.1', resolve));
  gate = await startGate({
    config: { upstream: { resolve: { 'registry.npmjs.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
    environments: [{ id: 'default', access: 'trusted', allowedPorts: [portOf(source), portOf(banner)] }],
  });
});

afterAll(async () => {
  await gate?.stop();
  await new Promise((resolve) => source?.close(resolve));
  await new Promise((resolve) => banner?.close(resolve));
});

describe('tunnel downloads through the shared read buffer', () => {
  it('six tunnels at once, three of them stalling, each get exactly their own bytes', async () => {
    const size = 12 * MiB;
    const names = Array.from({ length: 6 }, (_, i) => `stream${i}`);
    const got = await Promise.all(names.map((name, i) => download(name, size, i % 2 === 0)));
    got.forEach((result, i) => {
      expect(result.bytes, names[i]).toBe(size);
      expect(result.sha, names[i]).toBe(sent.get(names[i] as string));
    });
  }, 60_000);

  it('tunnels cut mid-download give their read buffers back, and the next ones still get exactly their bytes', async () => {
    // A download under way reads into a chunk of its own (a read that filled its buffer means
    // more is waiting); a tunnel closed then holds one, which goes back to the free list.
    const cut = Array.from({ length: 30 }, async (_, i) => {
      const { socket } = await openTunnel(portOf(source));
      socket.write(`cut${i} ${8 * MiB}\n`);
      let bytes = 0;
      await new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes >= MiB) {
            socket.destroy();
            resolve();
          }
        });
        socket.once('close', () => resolve());
      });
      return bytes;
    });
    for (const bytes of await Promise.all(cut)) expect(bytes).toBeGreaterThanOrEqual(MiB);
    const names = Array.from({ length: 6 }, (_, i) => `after${i}`);
    const got = await Promise.all(names.map((name, i) => download(name, 4 * MiB, i % 2 === 0)));
    got.forEach((result, i) => {
      expect(result.bytes, names[i]).toBe(4 * MiB);
      expect(result.sha, names[i]).toBe(sent.get(names[i] as string));
    });
  }, 60_000);

  it('a server that speaks first is heard by a client that has not sent a byte', async () => {
    const { socket, rest } = await openTunnel(portOf(banner));
    let text = rest.toString('latin1');
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    await new Promise<void>((resolve) => socket.once('end', () => resolve()));
    socket.destroy();
    expect(text).toBe('220 ready, before any byte from the client\r\n');
  });
});
