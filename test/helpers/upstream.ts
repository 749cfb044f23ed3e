// Local upstream servers that stand in for registry.npmjs.org and friends. Each records what
// it received so a test can prove what did (or did not) reach the upstream.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  bodyBytes: number;
  bodySha256: string;
}

export interface Upstream {
  port: number;
  seen: SeenRequest[];
  connections: number;
  close(): Promise<void>;
}

/**
 * Routes: /bytes/N streams N deterministic bytes; /drip/S streams 1 KiB every 20 ms for S
 * seconds; anything else answers JSON describing the request,
 * after reading the whole body (its size and sha256).
 */
function handler(seen: SeenRequest[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const hash = createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes, bodySha256: hash.digest('hex') };
      seen.push(record);
      const drip = /^\/drip\/(\d+)/.exec(req.url ?? '');
      if (drip) {
        // 1 KiB every 20 ms for the given number of seconds: a long, slow download.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const until = Date.now() + Number(drip[1]) * 1000;
        const timer = setInterval(() => {
          if (Date.now() > until) {
            clearInterval(timer);
            res.end();
          } else res.write(Buffer.alloc(1024, 0x61));
        }, 20);
        res.on('close', () => clearInterval(timer));
        return;
      }
      const bytes = /^\/bytes\/(\d+)/.exec(req.url ?? '');
      if (bytes) {
        const total = Number(bytes[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
        streamPattern(res, total);
        return;
      }
      const body = JSON.stringify({ ok: true, method: record.method, url: record.url, host: req.headers.host, bodyBytes, bodySha256: record.bodySha256 });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'local' });
      res.end(body);
    });
  };
}

/** Deterministic content: byte i is (i * 7 + 3) & 0xff, so the client can verify every byte. */
export function patternBytes(offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = ((offset + i) * 7 + 3) & 0xff;
  return out;
}

function streamPattern(res: ServerResponse, total: number): void {
  let sent = 0;
  const chunk = 64 * 1024;
  const pump = (): void => {
    while (sent < total) {
      const size = Math.min(chunk, total - sent);
      const ok = res.write(patternBytes(sent, size));
      sent += size;
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

async function listen(server: Server, seen: SeenRequest[], host: string): Promise<Upstream> {
  const state = { connections: 0 };
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function startHttpUpstream(host = '127.0.0.1'): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  return listen(createHttpServer(handler(seen)), seen, host);
}

export function startHttpsUpstream(cert: { certPem: string; keyPem: string }, host = '127.0.0.1'): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  return listen(createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, handler(seen)), seen, host);
}
