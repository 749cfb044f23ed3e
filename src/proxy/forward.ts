// Plain HTTP in absolute form: every request on a kept-alive client connection is admitted on
// its own (a connection may switch hosts; each target is checked). Bodies stream both ways
// without buffering. The upstream request line is rebuilt from the parsed URI, with a Host header
// that names exactly the checked target.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { admit } from './admit.js';
import { proxyAuthorizationOf } from './identity.js';
import type { DecisionRecord, ProxyContext } from './context.js';
import { bodyToSend, checkRequestHead, declaresBody, type ContentRefusal } from './content-check.js';
import { endToEndHeaders, upstreamHeaders } from './headers.js';
import { refuseResponse, type Refusal } from './refuse.js';
import { formatAuthority, hostHeaderMatches, parseAbsoluteUri } from './target.js';
import { sendUpstream } from './upstream-http.js';
import type { UpstreamPool } from './upstream-pool.js';

// Requests pipelined behind one answered with "Connection: close" were already dispatched by
// Node's parser; they are bytes the client sent after a refusal, not requests to serve. Without
// this, `GET <allowed> / Host: <other>` + a second request got a 421 and then the second
// request forwarded anyway.
const closing = new WeakSet<Socket>();

function refuseAndClose(res: ServerResponse, socket: Socket, refusal: Refusal): void {
  closing.add(socket);
  refuseResponse(res, refusal, true);
}

function hostLines(rawHeaders: string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === 'host') count += 1;
  return count;
}

export async function handleForward(ctx: ProxyContext, upstream: UpstreamPool, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const socket = req.socket as Socket;
  if (closing.has(socket)) {
    req.resume();
    return;
  }
  const parsed = parseAbsoluteUri(req.url ?? '');
  if (!parsed.ok) {
    const host = '';
    refuseAndClose(res, socket, { reason: 'bad_request', host, environment: '' });
    ctx.observer.decision({ environment: '', session: undefined, method, host, port: 0, decision: 'deny', reason: 'bad_request', detail: parsed.why });
    req.resume();
    return;
  }
  const { target, path } = parsed;
  // Node keeps the first of two Host lines; a server behind a cache may keep the last. RFC 9112
  // §3.2: more than one Host field line is a 400.
  if (hostLines(req.rawHeaders) > 1) {
    refuseAndClose(res, socket, { reason: 'bad_request', host: target.host, environment: '' });
    ctx.observer.decision({ environment: '', session: undefined, method, host: target.host, port: target.port, decision: 'deny', reason: 'bad_request', detail: 'more than one Host header' });
    req.resume();
    return;
  }
  const hostHeader = req.headers.host;
  if (hostHeader !== undefined && !hostHeaderMatches(hostHeader, target)) {
    // Two authorities in one request: the one we would check and the one a server would route on.
    refuseAndClose(res, socket, { reason: 'misdirected', host: target.host, environment: '' });
    ctx.observer.decision({ environment: '', session: undefined, method, host: target.host, port: target.port, decision: 'deny', reason: 'misdirected' });
    req.resume();
    return;
  }

  const admitted = await admit(ctx, { method, target, proxyAuthorization: proxyAuthorizationOf(req.rawHeaders), remoteAddress: socket.remoteAddress });
  if (closing.has(socket)) {
    req.resume();
    return;
  }
  if (!admitted.ok) {
    if (admitted.refusal.reason === 'auth_invalid') refuseAndClose(res, socket, admitted.refusal);
    else refuseResponse(res, admitted.refusal);
    ctx.observer.decision(admitted.record);
    req.resume();
    return;
  }
  const envId = admitted.environment.policy.id;
  const record: DecisionRecord = { environment: envId, session: admitted.sessionId, method, host: target.host, port: target.port, decision: 'allow', reason: 'allowed', rule: admitted.decision.rule, decisionSeconds: (performance.now() - started) / 1000 };

  // The content layer (SPEC §3): rules and secrets on every request, not only a connection's first.
  const forwarded = endToEndHeaders(req.rawHeaders);
  const verdict = checkRequestHead(admitted.environment, ctx.secretFormats, target, { method, path, headers: forwarded, contentLength: req.headers['content-length'] });
  if (!verdict.allow) {
    const refusal: Refusal = { reason: verdict.reason, host: target.host, environment: envId };
    if (verdict.rule === 'content.maxRequestBodyBytes') refuseAndClose(res, socket, refusal);
    else refuseResponse(res, refusal);
    ctx.observer.decision({ ...record, decision: 'deny', reason: verdict.reason, rule: verdict.rule });
    req.resume();
    return;
  }
  if (verdict.detail !== undefined) record.detail = verdict.detail;

  const slot = await ctx.limiter.open(admitted.sessionKey, admitted.environment);
  if (!slot.ok) {
    refuseResponse(res, { reason: 'rate_limited', host: target.host, environment: envId, retryAfter: slot.retryAfterSeconds });
    ctx.observer.decision({ ...record, decision: 'deny', reason: 'rate_limited', rule: `limit:${slot.scope}`, limiter: slot.state });
    req.resume();
    return;
  }

  // A kept-alive client connection is registered under its latest target, so a policy change
  // that refuses that target closes the connection rather than waiting for the next request.
  const unregister = ctx.connections.holdRequest(socket, { sessionKey: admitted.sessionKey, sessionId: admitted.sessionId, environment: envId, target });
  let done = false;
  let bytesUp = 0;
  let bytesDown = 0;
  const finish = (outcome?: Partial<DecisionRecord>): void => {
    if (done) return;
    done = true;
    socket.off('close', onClientGone);
    unregister();
    slot.release?.();
    ctx.observer.forwardBytes(envId, bytesUp, bytesDown);
    // The record itself, not a copy: object spread costs microseconds per request.
    record.bytesUp = bytesUp;
    record.bytesDown = bytesDown;
    record.durationMs = Math.round(performance.now() - started);
    if (outcome !== undefined) Object.assign(record, outcome);
    ctx.observer.decision(record);
  };
  const onClientGone = (): void => {
    if (done) return;
    cutUpstream();
    finish({ detail: 'client closed early' });
  };
  // Once the whole request is in, the upstream's timer governs (and answers 504): the client
  // socket's idle timer, which fired first, cut a client waiting for a slow upstream without a
  // word. A stalled request body stays under the client's timer; Node re-arms it
  // (keepAliveTimeout) once the response ends.
  const bodiless = !declaresBody(req.headers);
  if (bodiless) {
    socket.setTimeout(0);
  } else {
    req.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
    });
    req.once('end', () => {
      if (!done) socket.setTimeout(0);
    });
  }
  const headers = upstreamHeaders(forwarded, formatAuthority(target, 80));
  // Bound once the request is sent; a refusal of the body can come before that.
  let cutUpstream = (): void => undefined;
  const body = bodyToSend(
    req,
    {
      env: admitted.environment,
      formats: ctx.secretFormats,
      target,
      onLogged: (kind) => {
        record.detail = `secret_logged:${kind}`;
      },
      onRefused: (refusal: ContentRefusal) => {
        refuseAndClose(res, socket, { reason: refusal.reason, host: target.host, environment: envId });
        finish({ decision: 'deny', reason: refusal.reason, rule: refusal.rule });
      },
      isDone: () => done,
      bodiless,
    },
    () => cutUpstream(),
  );
  cutUpstream = sendUpstream(ctx, upstream, { address: admitted.addresses[0] as string, port: target.port, method, path, headers, body }, res, {
    host: target.host,
    environment: envId,
    isDone: () => done,
    finish,
    onDownBytes: (bytes) => {
      bytesDown += bytes;
    },
  });
  // A response queued behind a pipelined one is not attached to the socket yet and never sees
  // 'close': without this, a client that pipelines and hangs up leaked its registry entry and
  // connection slot until the session hit its cap.
  socket.once('close', onClientGone);
}
