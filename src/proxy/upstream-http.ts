// The upstream half of a plain-HTTP forwarded request, sent through undici's dispatcher rather
// than Node's http client: in the bare proxy of bench/, Node's ClientRequest, agent and response
// objects cost 106 µs of CPU per request and undici's dispatcher 57 (docs/decisions.md).
// Response framing (chunked, HEAD, 204/304, close-delimited, 1xx) is undici's. Connections
// are pooled per checked address and port (the origin below is an address, never a name), so a
// pooled socket is only reused for the address it was dialled to.

import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { lazyRequire } from '../lazy-require.js';
import type { ReasonCode } from '../policy/types.js';
import type { ProxyContext } from './context.js';
import { endToEndHeaders } from './headers.js';
import { refuseResponse } from './refuse.js';
import type { RelayHooks } from './relay.js';
import { formatAuthority } from './target.js';

// Only the agent and what it needs: the package's index also loads fetch, WebSocket and the
// rest, 3 MB more heap that every garbage collection would walk. Loaded at the first forwarded
// request: a process that only tunnels never needs it.
const agentClass = lazyRequire<typeof Agent>('undici/lib/dispatcher/agent.js');

export interface UpstreamTimeouts {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** The pool of upstream connections; `close` ends them all. */
export interface UpstreamHttp {
  dispatcher(): Dispatcher;
  close(): void;
}

export function createUpstreamHttp(timeouts: UpstreamTimeouts): UpstreamHttp {
  let agent: Agent | undefined;
  // An upstream gets as long between two reads as it did under Node's socket timeout: the time
  // to connect plus the proxy's idle timeout, for the response head and for every body chunk.
  const idle = timeouts.connectTimeoutMs + timeouts.idleTimeoutMs;
  return {
    dispatcher() {
      agent ??= new (agentClass())({ connect: { timeout: timeouts.connectTimeoutMs }, headersTimeout: idle, bodyTimeout: idle, pipelining: 1 });
      return agent;
    },
    close() {
      void agent?.destroy().catch(() => undefined);
      agent = undefined;
    },
  };
}

/** What the inspected path's relay is told, less its error classifier (undici's codes are classified here). */
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

type Failure = Extract<ReasonCode, 'upstream_timeout' | 'upstream_unreachable' | 'bad_request'>;

const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
// Headers Node's parser accepted that undici will not send (a duplicate Content-Length, say).
const refusedByClient = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

function failureOf(error: Error & { code?: string }): Failure {
  if (error.code !== undefined && timeoutCodes.has(error.code)) return 'upstream_timeout';
  if (error.code !== undefined && refusedByClient.has(error.code)) return 'bad_request';
  return 'upstream_unreachable';
}

/** The code of the socket error under undici's wrapper, which is what an operator can act on. */
function detailOf(error: Error & { code?: string; cause?: unknown }): string {
  const cause = error.cause as { code?: string } | undefined;
  return cause?.code ?? error.code ?? error.message;
}

/** Streams one response back to the client; answers an upstream failure before it with 502/504. */
class ResponseRelay implements Dispatcher.DispatchHandler {
  private abortRequest: ((error: Error) => void) | undefined;
  private cancelled = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly res: ServerResponse,
    private readonly hooks: UpstreamHooks,
  ) {}

  /** The client is gone: stop the upstream exchange. */
  cancel(): void {
    this.cancelled = true;
    this.abortRequest?.(new Error('client closed early'));
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortRequest = abort;
    if (this.cancelled) abort(new Error('client closed early'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // Interim responses (102, 103) are the upstream's business; the client gets the final one.
    if (statusCode < 200) return true;
    const names: string[] = new Array(rawHeaders.length);
    for (let i = 0; i < rawHeaders.length; i++) names[i] = (rawHeaders[i] as Buffer).toString('latin1');
    this.res.writeHead(statusCode, statusText, endToEndHeaders(names));
    // 204 and 304 never have a body (RFC 9110 §6.4.1), and the client gets its whole answer now:
    // undici holds a 304's Content-Length (legal: the length a 200 would have had) against the
    // bytes that followed, none, and destroys the connection with an error after the head.
    if (statusCode === 204 || statusCode === 304) {
      this.res.end();
      return true;
    }
    this.res.on('drain', resume);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.hooks.onDownBytes(chunk.length);
    // Bytes for a client that is gone are dropped; the exchange is being cut.
    if (this.res.destroyed) return true;
    return this.res.write(chunk);
  }

  onComplete(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  onError(error: Error & { code?: string }): void {
    // Cancelled: the client left, or the body filter refused the body and answered already.
    // Ended: the client has its whole answer (a 304), and what failed after it is the upstream
    // connection's business.
    if (this.hooks.isDone() || this.cancelled || this.res.writableEnded) return;
    const reason = failureOf(error);
    this.ctx.observer.error(reason);
    const detail = detailOf(error);
    if (!this.res.headersSent) {
      refuseResponse(this.res, { reason, host: this.hooks.host, environment: this.hooks.environment }, true);
      this.hooks.finish({ decision: 'deny', reason, detail });
    } else {
      this.res.destroy();
      this.hooks.finish({ detail: `upstream failed mid-response: ${detail}` });
    }
  }
}

/** Sends the request; returns what cuts it when the client leaves first. */
export function sendUpstream(ctx: ProxyContext, upstream: UpstreamHttp, request: UpstreamRequest, res: ServerResponse, hooks: UpstreamHooks): () => void {
  const relay = new ResponseRelay(ctx, res, hooks);
  res.on('finish', () => hooks.finish());
  res.on('close', () => {
    if (res.writableFinished) return;
    relay.cancel();
    hooks.finish({ detail: 'client closed early' });
  });
  // Default port 0: the origin always names its port.
  const origin = `http://${formatAuthority({ host: request.address, port: request.port }, 0)}`;
  upstream.dispatcher().dispatch({ origin, method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body }, relay);
  return () => relay.cancel();
}
