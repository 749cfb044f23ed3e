// CONNECT: after admission, a byte pipe between the client and the checked upstream address.
// Half-close is passed through (a client that ends its upload still gets the download), an
// error on either side tears down both, and an idle tunnel is closed. A tunnel the content
// policy inspects is handed to inspect/intercept.ts instead of being dialled.

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { interceptTunnel } from '../inspect/intercept.js';
import { shouldInspect } from '../policy/content.js';
import { admit } from './admit.js';
import { proxyAuthorizationOf } from './identity.js';
import type { DecisionRecord, ProxyContext } from './context.js';
import { dialChecked } from './dial.js';
import type { IdleSweeper } from './idle.js';
import { refuseSocket } from './refuse.js';
import { parseAuthority } from './target.js';
import { PooledDownstream, pooledReads } from './pooled-reads.js';
import { pipeShaped } from './throttle.js';

/** Until the tunnel's own teardown takes over: a shared listener, not a closure per tunnel. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

export async function handleConnect(ctx: ProxyContext, req: IncomingMessage, client: Duplex, head: Buffer, idle: IdleSweeper): Promise<void> {
  const started = performance.now();
  const clientSocket = client as Socket;
  client.on('error', destroyOnError);
  const parsed = parseAuthority(req.url ?? '');
  if (!parsed.ok) {
    const host = (req.url ?? '').slice(0, 300);
    refuseSocket(client, { reason: 'bad_request', host, environment: '' });
    ctx.observer.decision({ environment: '', session: undefined, method: 'CONNECT', host, port: 0, decision: 'deny', reason: 'bad_request', detail: parsed.why });
    return;
  }
  const { target } = parsed;
  const admitted = await admit(ctx, { method: 'CONNECT', target, proxyAuthorization: proxyAuthorizationOf(req.rawHeaders), remoteAddress: clientSocket.remoteAddress });
  if (!admitted.ok) {
    refuseSocket(client, admitted.refusal);
    ctx.observer.decision(admitted.record);
    return;
  }
  const envId = admitted.environment.policy.id;
  const record: DecisionRecord = { environment: envId, session: admitted.sessionId, method: 'CONNECT', host: target.host, port: target.port, decision: 'allow', reason: 'allowed', rule: admitted.decision.rule, decisionSeconds: (performance.now() - started) / 1000 };

  const slot = await ctx.limiter.open(admitted.sessionKey, admitted.environment);
  if (!slot.ok) {
    refuseSocket(client, { reason: 'rate_limited', host: target.host, environment: envId, retryAfter: slot.retryAfterSeconds });
    ctx.observer.decision({ ...record, decision: 'deny', reason: 'rate_limited', rule: `limit:${slot.scope}`, limiter: slot.state });
    return;
  }
  if (client.destroyed) {
    slot.release?.();
    return;
  }
  // Git hosts are always inspected when the GitHub proxy is on: the scoped credential must be swapped.
  if (shouldInspect(admitted.environment.content, target.host, target.port) || ctx.github?.isGitHost(target.host)) {
    const unregister = ctx.connections.add({ sessionKey: admitted.sessionKey, sessionId: admitted.sessionId, environment: envId, target, close: () => client.destroy() });
    const tunnel = { target, proxyAuthorization: req.headers['proxy-authorization'], sessionKey: admitted.sessionKey, sessionId: admitted.sessionId, environment: envId, addresses: admitted.addresses };
    interceptTunnel(ctx, clientSocket, head, tunnel, (outcome) => {
      unregister();
      slot.release?.();
      ctx.observer.tunnelBytes(envId, outcome.bytesUp ?? 0, outcome.bytesDown ?? 0);
      ctx.observer.decision({ ...record, inspected: true, durationMs: Math.round(performance.now() - started), ...outcome });
    });
    return;
  }
  const dialled = await dialChecked(admitted.addresses, target.port, ctx.settings.connectTimeoutMs, pooledReads);
  if (!dialled.ok) {
    slot.release?.();
    refuseSocket(client, { reason: dialled.reason, host: target.host, environment: envId });
    ctx.observer.decision({ ...record, decision: 'deny', reason: dialled.reason, detail: dialled.detail });
    ctx.observer.error(dialled.reason);
    return;
  }
  ctx.observer.upstreamTiming('connect', dialled.connectMs / 1000);
  const upstream = dialled.socket;
  if (client.destroyed) {
    upstream.destroy();
    slot.release?.();
    return;
  }

  const shaping = ctx.limiter.bandwidth(admitted.sessionKey, admitted.environment);
  let finished = false;
  const teardown = (): void => {
    client.destroy();
    upstream.destroy();
  };
  const unregister = ctx.connections.add({ sessionKey: admitted.sessionKey, sessionId: admitted.sessionId, environment: envId, target, close: teardown });
  // The idle timer set at accept (server.ts) would be re-armed on every chunk; the sweeper
  // watches the tunnel's byte counters instead.
  clientSocket.setTimeout?.(0);
  const watched = idle.watch(clientSocket, upstream, teardown);
  const finish = (): void => {
    if (finished || !client.destroyed || !upstream.destroyed) return;
    finished = true;
    idle.unwatch(watched);
    unregister();
    slot.release?.();
    shaping?.release();
    const up = upstream.bytesWritten;
    const down = upstream.bytesRead;
    ctx.observer.tunnelBytes(envId, up, down);
    // The record itself, not a copy, as forward.ts does.
    record.bytesUp = up;
    record.bytesDown = down;
    record.durationMs = Math.round(performance.now() - started);
    ctx.observer.decision(record);
  };

  upstream.on('error', teardown);
  client.off('error', destroyOnError);
  client.on('error', teardown);
  upstream.on('close', () => {
    // The upstream is gone: nothing more can reach the client once what is buffered drains.
    if (!client.destroyed) client.end();
    finish();
  });
  client.on('close', () => {
    upstream.destroy();
    finish();
  });
  clientSocket.setNoDelay?.(true);

  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) upstream.write(head);
  pipeShaped(client, upstream, shaping?.up);
  new PooledDownstream(upstream, clientSocket, shaping?.down);
}
