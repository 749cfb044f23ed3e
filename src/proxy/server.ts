// The proxy listener: Node's HTTP parser (llhttp, strict mode) frames requests, so smuggling
// forms it refuses (CL with TE, duplicate CL, obs-fold, bare LF) never reach a handler; the
// refusal is a 400 with X-Deny-Reason like every other.

import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyContext } from './context.js';
import { handleForward } from './forward.js';
import { refuseSocket } from './refuse.js';
import { IdleSweeper } from './idle.js';
import { handleConnect } from './tunnel.js';
import { UpstreamPool } from './upstream-pool.js';

export interface ProxyServer {
  server: Server;
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets in-flight work finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

function destroySocket(this: Socket): void {
  this.destroy();
}

export function createProxyServer(ctx: ProxyContext): ProxyServer {
  const upstream = new UpstreamPool(ctx.settings);
  const idleTunnels = new IdleSweeper(ctx.settings.idleTimeoutMs);
  const server = createServer({
    maxHeaderSize: ctx.settings.maxHeaderBytes,
    headersTimeout: ctx.settings.headerTimeoutMs,
    // Whole-request timeout would cut long uploads; bodies are bounded by the idle timeout instead.
    requestTimeout: 0,
    // Node re-arms the socket timeout with keepAliveTimeout after every response, replacing the
    // idle timeout set at accept: an idle kept-alive client held its slot for 65 s whatever
    // proxy.idleTimeoutMs said.
    keepAliveTimeout: Math.min(65_000, ctx.settings.idleTimeoutMs),
    connectionsCheckingInterval: Math.min(1_000, ctx.settings.headerTimeoutMs),
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    noDelay: true,
  });
  server.maxConnections = ctx.settings.maxConnections;
  const sockets = new Set<Socket>();

  // Listeners shared by every socket (`this` is the socket), not two closures per connection:
  // an idle tunnel holds its client socket, and idle tunnels are counted in thousands.
  function onClose(this: Socket): void {
    sockets.delete(this);
    ctx.observer.connectionClosed();
  }
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    ctx.observer.connectionOpened();
    socket.setTimeout(ctx.settings.idleTimeoutMs);
    socket.on('timeout', destroySocket);
    socket.on('close', onClose);
  });
  server.on('request', (req, res) => {
    handleForward(ctx, upstream, req, res).catch((error: Error) => {
      ctx.log.error({ err: error.message }, 'forward handler failed');
      ctx.observer.error('internal');
      res.destroy();
    });
  });
  server.on('connect', (req, socket, head) => {
    handleConnect(ctx, req, socket, head, idleTunnels).catch((error: Error) => {
      ctx.log.error({ err: error.message }, 'connect handler failed');
      ctx.observer.error('internal');
      socket.destroy();
    });
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    ctx.observer.error('client_parse');
    ctx.observer.decision({ environment: '', session: undefined, method: '', host: '', port: 0, decision: 'deny', reason: 'bad_request', detail: error.code ?? 'parse error' });
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    refuseSocket(socket, { reason: 'bad_request', host: '', environment: '' });
  });

  return {
    server,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? { host: address.address, port: address.port } : { host, port });
        });
      });
    },
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // A kept-alive connection becomes idle when its last response ends: close it then, not at the deadline.
      server.closeIdleConnections();
      const sweeper = setInterval(() => server.closeIdleConnections(), 50);
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([closed, deadline]);
      clearInterval(sweeper);
      for (const socket of sockets) socket.destroy();
      ctx.connections.closeAll();
      idleTunnels.stop();
      upstream.close();
      await closed;
    },
  };
}
