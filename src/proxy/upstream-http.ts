// The upstream half of a plain-HTTP forwarded request: the request written on a pooled
// connection to the checked address (upstream-pool.ts), the response read by Node's own llhttp
// (response-parser.ts) and streamed back to the client as it comes. A client of our own rather
// than Node's http client or undici's: each costs a forwarded request more CPU than everything
// egress-gate decides about it (docs/decisions.md).

import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ProxyContext } from './context.js';
import { endToEndHeaders } from './headers.js';
import { refuseResponse } from './refuse.js';
import type { RelayHooks } from './relay.js';
import type { Exchange, UpstreamConnection, UpstreamFailure } from './upstream-connection.js';
import type { UpstreamPool } from './upstream-pool.js';

/** What the inspected path's relay is told, less its error classifier (failures are classified here). */
export type UpstreamHooks = Omit<RelayHooks, 'reasonOf'>;

export interface UpstreamRequest {
  /** The checked address, as dialled. */
  address: string;
  port: number;
  method: string;
  path: string;
  /** Flat [name, value, ...], hop-by-hop headers already removed, Host included. */
  headers: string[];
  body: Readable | null;
}

/**
 * The request head. Names and values come from Node's strict parser (no CR or LF) or are the
 * proxy's own. A body without a Content-Length (the client sent it chunked) goes chunked.
 */
function requestHead(request: UpstreamRequest, chunked: boolean): string {
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
  const { headers } = request;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return chunked ? `${head}Transfer-Encoding: chunked\r\n\r\n` : `${head}\r\n`;
}

function hasContentLength(headers: string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'content-length') return true;
  return false;
}

/** One request on one upstream connection, and its response streamed to the client. */
class ForwardExchange implements Exchange {
  /** The whole request is written: the connection may carry another once the response ends. */
  private requestSent = false;
  /** Over: answered, failed or cut. Late events (a drain, a body chunk) are ignored. */
  private over = false;
  private paused = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly pool: UpstreamPool,
    private readonly connection: UpstreamConnection,
    private readonly res: ServerResponse,
    private readonly hooks: UpstreamHooks,
    private readonly isHead: boolean,
  ) {}

  send(request: UpstreamRequest): void {
    const { socket } = this.connection;
    const body = request.body;
    const chunked = body !== null && !hasContentLength(request.headers);
    socket.write(requestHead(request, chunked), 'latin1');
    if (body === null) {
      this.requestSent = true;
      return;
    }
    let waiting = false;
    const drained = (): void => {
      waiting = false;
      body.resume();
    };
    body.on('data', (chunk: Buffer) => {
      if (this.over || socket.destroyed) return;
      let flowing: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        flowing = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        flowing = socket.write(chunk);
      }
      if (!flowing && !waiting) {
        waiting = true;
        body.pause();
        socket.once('drain', drained);
      }
    });
    // A body that fails (not a refusal: that cuts the exchange first) leaves the request unfinished.
    body.once('error', (error: NodeJS.ErrnoException) => {
      this.connection.abandon();
      this.fail({ timeout: false, detail: `request body: ${error.code ?? error.message}` });
    });
    body.once('end', () => {
      if (this.over || socket.destroyed) return;
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.requestSent = true;
    });
  }

  /** The client is gone, or its body was refused: stop the upstream exchange. */
  cancel(): void {
    if (this.over) return;
    this.over = true;
    this.connection.abandon();
  }

  head(status: number, statusText: string, headers: string[]): boolean {
    try {
      this.res.writeHead(status, statusText, endToEndHeaders(headers));
    } catch (error) {
      // A head llhttp accepts and Node's server will not repeat (a character it refuses in a value).
      this.connection.abandon();
      this.fail({ timeout: false, detail: (error as NodeJS.ErrnoException).code ?? 'invalid response head' });
      return true;
    }
    return this.isHead;
  }

  body(chunk: Buffer): void {
    this.hooks.onDownBytes(chunk.length);
    // Bytes for a client that is gone, or already answered, are dropped; the exchange is being cut.
    if (this.over || this.res.destroyed || this.res.writableEnded) return;
    if (this.res.write(chunk) || this.paused) return;
    // The client reads slower than the upstream sends: stop reading the upstream until it catches up.
    this.paused = true;
    this.connection.socket.pause();
    this.res.once('drain', () => {
      if (!this.paused) return;
      this.paused = false;
      this.connection.socket.resume();
    });
  }

  complete(): void {
    if (this.over) return;
    this.over = true;
    if (this.paused) {
      this.paused = false;
      this.connection.socket.resume();
    }
    if (!this.res.writableEnded) this.res.end();
    // An upstream that answered before the request was all written is not asked again.
    this.pool.release(this.connection, this.requestSent);
  }

  fail(failure: UpstreamFailure): void {
    if (this.over) return;
    this.over = true;
    // Ended: the client has its whole answer, and what failed after it is the connection's business.
    if (this.hooks.isDone() || this.res.writableEnded) return;
    const reason = failure.timeout ? 'upstream_timeout' : 'upstream_unreachable';
    this.ctx.observer.error(reason);
    if (!this.res.headersSent) {
      refuseResponse(this.res, { reason, host: this.hooks.host, environment: this.hooks.environment }, true);
      this.hooks.finish({ decision: 'deny', reason, detail: failure.detail });
    } else {
      this.res.destroy();
      this.hooks.finish({ detail: `upstream failed mid-response: ${failure.detail}` });
    }
  }
}

/** Sends the request; returns what cuts it when the client leaves first. */
export function sendUpstream(ctx: ProxyContext, pool: UpstreamPool, request: UpstreamRequest, res: ServerResponse, hooks: UpstreamHooks): () => void {
  const connection = pool.take(request.address, request.port);
  const exchange = new ForwardExchange(ctx, pool, connection, res, hooks, request.method === 'HEAD');
  res.on('finish', () => hooks.finish());
  res.on('close', () => {
    if (res.writableFinished) return;
    exchange.cancel();
    hooks.finish({ detail: 'client closed early' });
  });
  connection.begin(exchange);
  exchange.send(request);
  return () => exchange.cancel();
}
