// Plain HTTP in absolute form: every request on a kept-alive client connection is admitted on
// its own (a connection may switch hosts; each target is checked). Bodies stream both ways
// without buffering. The upstream request line is rebuilt from the parsed URI, with a Host header
// that names exactly the checked target.

import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { admit } from './admit.js';
import type { DecisionRecord, ProxyContext } from './context.js';
import { ContentRefusal, checkRequestHead, createBodyFilter } from './content-check.js';
import { endToEndHeaders } from './headers.js';
import { refuseResponse } from './refuse.js';
import { plainUpstreamReason, relayUpstream } from './relay.js';
import { formatAuthority, hostHeaderMatches, parseAbsoluteUri } from './target.js';

export function createUpstreamAgent(): Agent {
  // Pooled by checked address and port: a pooled socket is only reused for the same address.
  return new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 60_000 });
}

export async function handleForward(ctx: ProxyContext, agent: Agent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const socket = req.socket as Socket;
  const parsed = parseAbsoluteUri(req.url ?? '');
  if (!parsed.ok) {
    const host = '';
    refuseResponse(res, { reason: 'bad_request', host, environment: '' }, true);
    ctx.observer.decision({ environment: '', session: undefined, method, host, port: 0, decision: 'deny', reason: 'bad_request', detail: parsed.why });
    req.resume();
    return;
  }
  const { target, path } = parsed;
  const hostHeader = req.headers.host;
  if (hostHeader !== undefined && !hostHeaderMatches(hostHeader, target)) {
    // Two authorities in one request: the one we would check and the one a server would route on.
    refuseResponse(res, { reason: 'misdirected', host: target.host, environment: '' }, true);
    ctx.observer.decision({ environment: '', session: undefined, method, host: target.host, port: target.port, decision: 'deny', reason: 'misdirected' });
    req.resume();
    return;
  }

  const admitted = await admit(ctx, { method, target, proxyAuthorization: req.headers['proxy-authorization'], remoteAddress: socket.remoteAddress });
  if (!admitted.ok) {
    refuseResponse(res, admitted.refusal, admitted.refusal.reason === 'auth_invalid');
    ctx.observer.decision(admitted.record);
    req.resume();
    return;
  }
  const envId = admitted.environment.policy.id;
  const record: DecisionRecord = { environment: envId, session: admitted.sessionId, method, host: target.host, port: target.port, decision: 'allow', reason: 'allowed', rule: admitted.decision.rule, decisionSeconds: (performance.now() - started) / 1000 };

  // The content layer (SPEC §3): rules and secrets on every request, not only a connection's first.
  const verdict = checkRequestHead(admitted.environment, ctx.secretFormats, target, { method, path, rawHeaders: req.rawHeaders, contentLength: req.headers['content-length'] });
  if (!verdict.allow) {
    refuseResponse(res, { reason: verdict.reason, host: target.host, environment: envId }, verdict.rule === 'content.maxRequestBodyBytes');
    ctx.observer.decision({ ...record, decision: 'deny', reason: verdict.reason, rule: verdict.rule });
    req.resume();
    return;
  }
  if (verdict.detail !== undefined) record.detail = verdict.detail;

  const slot = ctx.limiter.open(admitted.sessionKey, admitted.environment);
  if (!slot.ok) {
    refuseResponse(res, { reason: 'rate_limited', host: target.host, environment: envId, retryAfter: slot.retryAfterSeconds });
    ctx.observer.decision({ ...record, decision: 'deny', reason: 'rate_limited', rule: `limit:${slot.scope}`, limiter: slot.state });
    req.resume();
    return;
  }

  // A kept-alive client connection is registered under its latest target, so a policy change
  // that refuses that target closes the connection rather than waiting for the next request.
  const unregister = ctx.connections.add({ sessionKey: admitted.sessionKey, sessionId: admitted.sessionId, environment: envId, target, close: () => socket.destroy() });
  let done = false;
  let bytesDown = 0;
  const finish = (outcome: Partial<DecisionRecord> = {}): void => {
    if (done) return;
    done = true;
    unregister();
    slot.release?.();
    ctx.observer.forwardBytes(envId, upstreamBytes(), bytesDown);
    ctx.observer.decision({ ...record, bytesUp: upstreamBytes(), bytesDown, durationMs: Math.round(performance.now() - started), ...outcome });
  };
  let sent = 0;
  const upstreamBytes = (): number => sent;
  req.on('data', (chunk: Buffer) => {
    sent += chunk.length;
  });

  const headers = endToEndHeaders(req.rawHeaders, true);
  headers.unshift('Host', formatAuthority(target, 80));
  const address = admitted.addresses[0] as string;
  const upstreamReq = httpRequest({ host: address, port: target.port, method, path, headers, agent, setHost: false });
  upstreamReq.on('socket', (upstreamSocket) => upstreamSocket.setNoDelay(true));
  relayUpstream(ctx, upstreamReq, res, {
    host: target.host,
    environment: envId,
    reasonOf: plainUpstreamReason,
    isDone: () => done,
    finish,
    onDownBytes: (bytes) => {
      bytesDown += bytes;
    },
  });
  const filter = createBodyFilter(admitted.environment, ctx.secretFormats, target, (kind) => {
    record.detail = `secret_logged:${kind}`;
  });
  if (!filter) {
    req.pipe(upstreamReq);
    return;
  }
  filter.on('error', (error: Error) => {
    if (!(error instanceof ContentRefusal) || done) return;
    // Refused mid-body: the upstream request is cut before its end, so it never completes.
    upstreamReq.destroy();
    refuseResponse(res, { reason: error.reason, host: target.host, environment: envId }, true);
    finish({ decision: 'deny', reason: error.reason, rule: error.rule });
  });
  req.pipe(filter).pipe(upstreamReq);
}
