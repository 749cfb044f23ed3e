// Large bodies stream through intact: 64 MiB down a CONNECT tunnel (curl over TLS) and 32 MiB
// each way through plain forwarding, every byte compared by SHA-256; a tunnel whose client stops
// reading stops the upstream too, rather than filling the proxy's memory.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { writeFileSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { createTestCa } from '../helpers/certs.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { run, cleanEnv } from '../helpers/run.js';
import { patternBytes, startHttpUpstream, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

const MiB = 1024 * 1024;
let gate: Gate;
let https: Upstream;
let http: Upstream;
let dir: string;
let caFile: string;

function patternSha(total: number): string {
  const hash = createHash('sha256');
  for (let offset = 0; offset < total; offset += MiB) hash.update(patternBytes(offset, Math.min(MiB, total - offset)));
  return hash.digest('hex');
}

beforeAll(async () => {
  const ca = createTestCa();
  https = await startHttpsUpstream(ca.issue(['registry.npmjs.org']));
  http = await startHttpUpstream();
  dir = tempDir();
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  gate = await startGate({
    config: { upstream: { resolve: { 'registry.npmjs.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
    environments: [{ id: 'default', access: 'trusted', allowedPorts: [https.port, http.port] }],
  });
});

afterAll(async () => {
  await gate?.stop();
  await https?.close();
  await http?.close();
});

describe('bulk transfers', () => {
  it('carries 64 MiB through a CONNECT tunnel intact', async () => {
    const size = 64 * MiB;
    const out = join(dir, 'tunnel.bin');
    const result = await run('curl', ['-sS', '--max-time', '120', '--proxy', gate.proxyUrl, '--cacert', caFile, '-o', out, `https://registry.npmjs.org:${https.port}/bytes/${size}`], { env: cleanEnv(), timeoutMs: 130_000 });
    expect(result.code, result.stderr).toBe(0);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(out)) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(patternSha(size));
  });

  it('carries 32 MiB up and 32 MiB down through plain forwarding intact (chunked upload)', async () => {
    const size = 32 * MiB;
    const upload = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gate.proxyPort, method: 'POST', path: `http://registry.npmjs.org:${http.port}/upload`, headers: { host: `registry.npmjs.org:${http.port}` } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      let offset = 0;
      const pump = (): void => {
        while (offset < size) {
          const chunk = patternBytes(offset, Math.min(MiB, size - offset));
          offset += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(upload.status).toBe(200);
    const echoed = JSON.parse(upload.body) as { bodyBytes: number; bodySha256: string };
    expect(echoed.bodyBytes).toBe(size);
    expect(echoed.bodySha256).toBe(patternSha(size));

    const download = await new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gate.proxyPort, path: `http://registry.npmjs.org:${http.port}/bytes/${size}`, headers: { host: `registry.npmjs.org:${http.port}` } }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        res.on('end', () => resolve({ bytes, sha: hash.digest('hex') }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(download.bytes).toBe(size);
    expect(download.sha).toBe(patternSha(size));
  });

  it('a tunnel whose client stops reading stops its upstream: the proxy holds a few MiB, not the 256 MiB on offer', async () => {
    // A raw upstream that writes as fast as the tunnel takes bytes, and counts what it got rid of.
    let flushed = 0;
    const sockets: Socket[] = [];
    const source = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (flushed < 256 * MiB && !socket.destroyed) {
          const more = socket.write(chunk, () => {
            flushed += chunk.length;
          });
          if (!more) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const port = (source.address() as { port: number }).port;
    const stalled = await startGate({
      config: { upstream: { resolve: { 'registry.npmjs.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
      environments: [{ id: 'default', access: 'trusted', allowedPorts: [port] }],
    });
    const client = connect(stalled.proxyPort, '127.0.0.1');
    try {
      client.write(`CONNECT registry.npmjs.org:${port} HTTP/1.1\r\nHost: registry.npmjs.org:${port}\r\n\r\n`);
      // Read the tunnel's answer and the first bytes, then stop reading.
      await new Promise<void>((resolve) => client.once('data', () => resolve()));
      client.pause();
      let last = -1;
      for (let i = 0; i < 40 && flushed !== last; i++) {
        last = flushed;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(flushed, 'the upstream kept sending while nobody read').toBeLessThan(64 * MiB);
      expect(flushed).toBeGreaterThan(0);
    } finally {
      client.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => source.close(resolve));
      await stalled.stop();
    }
  });
});
