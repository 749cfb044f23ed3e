// The upstream half of a request inside an inspected HTTPS tunnel (inspect/intercept.ts), on
// Node's https client (plain HTTP goes through upstream-http.ts): timeouts, the refusal when the
// upstream fails before answering, a cut when it fails mid-response, and the response streamed
// back without buffering.

import type { ClientRequest, ServerResponse } from 'node:http';
import type { ReasonCode } from '../policy/types.js';
import type { DecisionRecord, ProxyContext } from './context.js';
import { endToEndHeaders } from './headers.js';
import { refuseResponse } from './refuse.js';
import { streamBytes } from './stream-bytes.js';

type UpstreamFailure = Extract<ReasonCode, 'upstream_timeout' | 'upstream_unreachable' | 'upstream_tls_error'>;

export interface RelayHooks {
  host: string;
  environment: string;
  reasonOf(error: NodeJS.ErrnoException): UpstreamFailure;
  /** True once the exchange has been answered and recorded (a refusal mid-body, say). */
  isDone(): boolean;
  finish(outcome?: Partial<DecisionRecord>): void;
  onDownBytes(bytes: number): void;
}

export function relayUpstream(ctx: ProxyContext, upstreamReq: ClientRequest, res: ServerResponse, hooks: RelayHooks): void {
  upstreamReq.setTimeout(ctx.settings.connectTimeoutMs + ctx.settings.idleTimeoutMs);
  upstreamReq.on('timeout', () => upstreamReq.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })));
  upstreamReq.on('error', (error: NodeJS.ErrnoException) => {
    if (hooks.isDone()) return;
    const reason = hooks.reasonOf(error);
    ctx.observer.error(reason);
    if (!res.headersSent) {
      refuseResponse(res, { reason, host: hooks.host, environment: hooks.environment }, true);
      hooks.finish({ decision: 'deny', reason, detail: error.code ?? error.message });
    } else {
      res.destroy();
      hooks.finish({ detail: `upstream failed mid-response: ${error.code ?? error.message}` });
    }
  });
  upstreamReq.on('response', (upstreamRes) => {
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, endToEndHeaders(upstreamRes.rawHeaders));
    streamBytes(upstreamRes, res, hooks.onDownBytes);
    upstreamRes.on('error', () => res.destroy());
    res.on('finish', () => hooks.finish());
  });
  res.on('close', () => {
    if (!res.writableFinished) {
      upstreamReq.destroy();
      hooks.finish({ detail: 'client closed early' });
    }
  });
}
