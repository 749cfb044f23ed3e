// The one place a refusal becomes bytes: status, X-Deny-Reason, and a one-line body that tells
// an agent this is policy, not a network fault (so it stops retrying and asks for access).

import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ReasonCode } from '../policy/types.js';

const statusOf: Record<Exclude<ReasonCode, 'allowed'>, number> = {
  host_not_allowed: 403,
  host_denied: 403,
  private_address: 403,
  port_not_allowed: 403,
  content_filtered: 403,
  secret_detected: 403,
  auth_required: 407,
  auth_invalid: 407,
  misdirected: 421,
  rate_limited: 429,
  bad_request: 400,
  upstream_unreachable: 502,
  dns_failure: 502,
  upstream_tls_error: 502,
  upstream_timeout: 504,
};

const explanation: Record<Exclude<ReasonCode, 'allowed'>, string> = {
  host_not_allowed: 'the host is not on the allowlist of this environment',
  host_denied: 'the host is on the denylist of this environment',
  private_address: 'the host resolves to a private, loopback or link-local address',
  port_not_allowed: 'the port is not allowed for this host in this environment',
  content_filtered: 'the request is refused by a content rule of this environment',
  secret_detected: 'the request carries a credential that may not be sent to this host',
  auth_required: 'proxy credentials are required',
  auth_invalid: 'the proxy credentials are wrong or revoked',
  misdirected: 'the Host header or TLS server name does not match the proxy target',
  rate_limited: 'the rate limit of this session was exceeded; retry later',
  bad_request: 'the request could not be parsed as a proxy request',
  upstream_unreachable: 'the upstream server could not be reached',
  dns_failure: 'the host name could not be resolved',
  upstream_tls_error: 'the upstream TLS certificate could not be verified',
  upstream_timeout: 'the upstream server did not answer in time',
};

export interface Refusal {
  reason: Exclude<ReasonCode, 'allowed'>;
  host: string;
  environment: string;
  /** Seconds, for rate_limited. */
  retryAfter?: number;
}

export function statusFor(reason: Exclude<ReasonCode, 'allowed'>): number {
  return statusOf[reason];
}

const isPolicy = (status: number): boolean => status < 500;

export function refusalBody(refusal: Refusal): string {
  const status = statusOf[refusal.reason];
  const who = refusal.environment ? ` (environment "${refusal.environment}")` : '';
  const kind = isPolicy(status) ? 'refused by egress-gate policy' : 'failed at egress-gate';
  // Host names reaching here were validated, but the line must stay one line whatever happens.
  const host = refusal.host.replace(/[^\x21-\x7e]/g, '?').slice(0, 300) || '(none)';
  return `egress-gate: request to ${host}${who} ${kind}: ${explanation[refusal.reason]} [${refusal.reason}]\n`;
}

function headerLines(refusal: Refusal, bodyLength: number): [string, string][] {
  const headers: [string, string][] = [
    ['X-Deny-Reason', refusal.reason],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(bodyLength)],
    ['Cache-Control', 'no-store'],
  ];
  if (refusal.reason === 'auth_required' || refusal.reason === 'auth_invalid') {
    headers.push(['Proxy-Authenticate', 'Basic realm="egress-gate"']);
  }
  if (refusal.reason === 'rate_limited') headers.push(['Retry-After', String(Math.max(1, Math.ceil(refusal.retryAfter ?? 1)))]);
  return headers;
}

/** Refuses a plain-HTTP request. The connection stays usable unless `close` is set. */
export function refuseResponse(res: ServerResponse, refusal: Refusal, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = refusalBody(refusal);
  const headers = headerLines(refusal, Buffer.byteLength(body));
  if (close) headers.push(['Connection', 'close']);
  res.shouldKeepAlive = res.shouldKeepAlive && !close;
  res.writeHead(statusOf[refusal.reason], headers.flat());
  res.end(body);
}

/** Refuses on a raw socket (CONNECT, parse errors): the connection is closed after the answer. */
export function refuseSocket(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = refusalBody(refusal);
  const status = statusOf[refusal.reason];
  const head = [`HTTP/1.1 ${status} ${reasonPhrase(status)}`, ...headerLines(refusal, Buffer.byteLength(body)).map(([k, v]) => `${k}: ${v}`), 'Connection: close'];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  // A peer that never reads must not pin the socket open.
  setTimeout(() => socket.destroy(), 2_000).unref();
}

function reasonPhrase(status: number): string {
  return (
    { 400: 'Bad Request', 403: 'Forbidden', 407: 'Proxy Authentication Required', 408: 'Request Timeout', 421: 'Misdirected Request', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 504: 'Gateway Timeout' }[status] ?? 'Error'
  );
}
