// An inspected tunnel: the client's TLS is terminated with a leaf for the CONNECT host, each
// request inside is checked like a plain-HTTP one (identity again, rules, secrets, body) and
// sent upstream over a new TLS connection to the address admission checked, verified against
// the upstream trust store. A tunnel is for one host: SNI and every Host header must name it,
// or an allowed name would front for a forbidden one.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { canonicalIp } from '../policy/addresses.js';
import { normalizeHost } from '../policy/domains.js';
import type { Target } from '../policy/types.js';
import { checkRequestHead, declaresBody, streamBody } from '../proxy/content-check.js';
import type { DecisionRecord, ProxyContext } from '../proxy/context.js';
import { endToEndHeaders } from '../proxy/headers.js';
import { parseProxyAuthorization } from '../proxy/identity.js';
import { refuseResponse, refuseSocket, type Refusal } from '../proxy/refuse.js';
import { relayUpstream, type RelayHooks } from '../proxy/relay.js';
import { formatAuthority, parseAuthority } from '../proxy/target.js';

export interface InterceptedTunnel {
  target: Target;
  /** Kept to identify every inner request again: a revoked session stops at its next request. */
  proxyAuthorization: string | string[] | undefined;
  sessionKey: string;
  sessionId: string | undefined;
  environment: string;
  addresses: string[];
}

const tunnels = new WeakMap<object, InterceptedTunnel>();
const servers = new WeakMap<ProxyContext, Server>();

/** One HTTP server per proxy, never listening: inspected TLS sockets are handed to it. */
function innerServer(ctx: ProxyContext): Server {
  let server = servers.get(ctx);
  if (!server) {
    server = createServer({ maxHeaderSize: ctx.settings.maxHeaderBytes, requestTimeout: 0, keepAliveTimeout: 65_000, joinDuplicateHeaders: false, noDelay: true });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      handleInner(ctx, req, res).catch((error: Error) => {
        ctx.log.error({ err: error.message }, 'inspected request handler failed');
        ctx.observer.error('internal');
        res.destroy();
      });
    });
    // A malformed inner request ends the tunnel with a 400, like one on the outer listener.
    server.on('clientError', (_error, socket) => refuseSocket(socket, { reason: 'bad_request', host: '', environment: '' }));
    servers.set(ctx, server);
  }
  return server;
}

/**
 * Answers the CONNECT, terminates the client's TLS and serves the requests inside. `done` is
 * called once, when the tunnel is over, with the bytes up and down on the client connection.
 */
export function interceptTunnel(ctx: ProxyContext, client: Socket, head: Buffer, tunnel: InterceptedTunnel, done: (outcome: Partial<DecisionRecord>) => void): void {
  const { target } = tunnel;
  const leaves = ctx.inspection.leafCache();
  if (!leaves.ok) {
    ctx.log.error({ err: leaves.error }, 'inspection needs a CA');
    refuseSocket(client, { reason: 'upstream_tls_error', host: target.host, environment: tunnel.environment });
    done({ decision: 'deny', reason: 'upstream_tls_error', detail: 'no inspection CA' });
    return;
  }
  const secureContext = leaves.cache.contextFor(target.host);
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) client.unshift(head);
  const tls = new TLSSocket(client, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
  let secured = false;
  let finished = false;
  const finish = (outcome: Partial<DecisionRecord> = {}): void => {
    if (finished) return;
    finished = true;
    done({ bytesUp: client.bytesRead, bytesDown: client.bytesWritten, ...outcome });
  };
  tls.on('error', (error: Error) => {
    // The usual cause is a sandbox that does not trust the CA: say so in the record.
    if (!secured) finish({ detail: `client TLS handshake failed: ${error.message.slice(0, 120)}` });
    tls.destroy();
    client.destroy();
  });
  tls.on('close', () => {
    client.destroy();
    finish();
  });
  client.on('close', () => tls.destroy());
  tls.setTimeout(ctx.settings.idleTimeoutMs, () => tls.destroy());
  tls.once('secure', () => {
    secured = true;
    const sni = tls.servername;
    // SNI names the host the client believes it reaches; a different one is fronting (RFC 9110 §15.5.20).
    if (typeof sni === 'string' && sni !== '' && normalizeHost(sni) !== target.host) {
      refuseSocket(tls, { reason: 'misdirected', host: target.host, environment: tunnel.environment });
      ctx.observer.decision({ environment: tunnel.environment, session: tunnel.sessionId, method: 'CONNECT', host: target.host, port: target.port, decision: 'deny', reason: 'misdirected', detail: 'SNI names another host', inspected: true });
      return;
    }
    tunnels.set(tls, tunnel);
    innerServer(ctx).emit('connection', tls);
  });
}

/** A network errno (ECONNREFUSED, ETIMEDOUT...) is reachability; anything else from TLS is trust. */
function upstreamReason(error: NodeJS.ErrnoException): ReturnType<RelayHooks['reasonOf']> {
  const code = error.code ?? '';
  if (code === 'ETIMEDOUT') return 'upstream_timeout';
  if (/^E[A-Z]+$/.test(code) && !code.startsWith('ERR')) return 'upstream_unreachable';
  return 'upstream_tls_error';
}

async function handleInner(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const tunnel = tunnels.get(req.socket);
  if (!tunnel) {
    res.destroy();
    return;
  }
  const { target } = tunnel;
  const method = req.method ?? 'GET';
  // Never the path in the record: paths carry tokens and personal data.
  const record: DecisionRecord = { environment: tunnel.environment, session: tunnel.sessionId, method, host: target.host, port: target.port, decision: 'allow', reason: 'allowed', inspected: true };
  const refuse = (reason: Refusal['reason'], extra: Partial<DecisionRecord> = {}, close = false, retryAfter?: number): void => {
    refuseResponse(res, { reason, host: target.host, environment: record.environment, retryAfter }, close);
    ctx.observer.decision({ ...record, decision: 'deny', reason, decisionSeconds: (performance.now() - started) / 1000, ...extra });
    req.resume();
  };

  const hostHeader = req.headers.host;
  if (hostHeader === undefined) return refuse('bad_request', { detail: 'no Host header' }, true);
  const named = parseAuthority(hostHeader, 443);
  if (!named.ok || named.target.host !== target.host || named.target.port !== target.port) {
    return refuse('misdirected', { detail: 'Host names another authority than the tunnel' }, true);
  }
  const path = req.url ?? '';
  if (!path.startsWith('/')) return refuse('bad_request', { detail: 'inner request is not origin-form' }, true);

  const identity = ctx.identify(parseProxyAuthorization(tunnel.proxyAuthorization));
  if (!identity.ok) return refuse(identity.reason, {}, true);
  const env = identity.environment;
  record.environment = env.policy.id;
  const limit = await ctx.limiter.take({ sessionKey: tunnel.sessionKey, environment: record.environment, host: target.host }, env);
  if (!limit.ok) return refuse('rate_limited', { rule: `limit:${limit.scope}`, limiter: limit.state }, false, limit.retryAfterSeconds);

  const verdict = checkRequestHead(env, ctx.secretFormats, target, { method, path, headers: endToEndHeaders(req.rawHeaders), contentLength: req.headers['content-length'] });
  if (!verdict.allow) return refuse(verdict.reason, { rule: verdict.rule }, verdict.rule === 'content.maxRequestBodyBytes');
  if (verdict.rule !== undefined) record.rule = verdict.rule;
  if (verdict.detail !== undefined) record.detail = verdict.detail;
  record.decisionSeconds = (performance.now() - started) / 1000;

  let done = false;
  let bytesUp = 0;
  let bytesDown = 0;
  const finish = (outcome: Partial<DecisionRecord> = {}): void => {
    if (done) return;
    done = true;
    ctx.observer.decision({ ...record, bytesUp, bytesDown, durationMs: Math.round(performance.now() - started), ...outcome });
  };

  // The GitHub proxy: scoped credential swapped for the operator's, scope and pushes checked.
  let gitBody: Buffer | undefined;
  let gitAuthorization: string | undefined;
  if (ctx.github?.isGitHost(target.host)) {
    const outcome = await ctx.github.handle(tunnel.sessionId, target.host, method, path, req);
    if (outcome.kind === 'refuse') return refuse(outcome.reason, { rule: 'github', detail: outcome.detail });
    if (outcome.kind === 'challenge') {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="egress-gate git"', 'X-Deny-Reason': 'auth_required', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`egress-gate: ${target.host} needs this session's git credential\n`);
      ctx.observer.decision({ ...record, decision: 'deny', reason: 'auth_required', rule: 'github' });
      return;
    }
    if (outcome.kind === 'respond') {
      // A refused push, answered in git's protocol so the person sees why; nothing went upstream.
      res.writeHead(outcome.status, outcome.headers);
      res.end(outcome.body);
      ctx.observer.decision({ ...record, decision: 'deny', reason: 'content_filtered', rule: 'github.push', detail: outcome.detail });
      return;
    }
    gitAuthorization = outcome.authorization;
    gitBody = outcome.body;
  }

  let headers = endToEndHeaders(req.rawHeaders, true);
  if (gitAuthorization !== undefined || gitBody !== undefined) {
    const replaced = new Set([...(gitAuthorization !== undefined ? ['authorization'] : []), ...(gitBody !== undefined ? ['content-length', 'content-encoding'] : [])]);
    headers = headers.filter((_, i, all) => !replaced.has((all[i - (i % 2)] as string).toLowerCase()));
    if (gitAuthorization !== undefined) headers.push('Authorization', gitAuthorization);
    if (gitBody !== undefined) headers.push('Content-Length', String(gitBody.length));
  }
  headers.unshift('Host', formatAuthority(target, 443));
  const address = tunnel.addresses[0] as string;
  const upstreamReq = httpsRequest({
    host: address,
    port: target.port,
    // Verified against the name the client asked for, at the address admission checked.
    servername: canonicalIp(target.host) ? undefined : target.host,
    method,
    path,
    headers,
    agent: ctx.inspection.upstreamAgent,
    setHost: false,
  });
  relayUpstream(ctx, upstreamReq, res, {
    host: target.host,
    environment: record.environment,
    reasonOf: upstreamReason,
    isDone: () => done,
    finish,
    onDownBytes: (bytes) => {
      bytesDown += bytes;
    },
  });

  // A body the GitHub proxy already read goes on from memory; any other streams from the client.
  const source: Readable = gitBody !== undefined ? Readable.from([gitBody]) : req;
  source.on('data', (chunk: Buffer) => {
    bytesUp += chunk.length;
  });
  streamBody(source, upstreamReq, {
    env,
    formats: ctx.secretFormats,
    target,
    onLogged: (kind) => {
      record.detail = `secret_logged:${kind}`;
    },
    onRefused: (error) => {
      done = true;
      refuseResponse(res, { reason: error.reason, host: target.host, environment: record.environment }, true);
      ctx.observer.decision({ ...record, decision: 'deny', reason: error.reason, rule: error.rule, bytesUp, durationMs: Math.round(performance.now() - started) });
    },
    isDone: () => done,
    bodiless: gitBody === undefined && !declaresBody(req.headers),
  });
}
