// The content layer on the wire, shared by plain HTTP (forward.ts) and inspected HTTPS
// (inspect/intercept.ts): rules and secrets on the request head, then a body filter that
// scans and counts while streaming. Both answer with a Decision-like verdict; the caller
// turns a refusal into bytes through refuse.ts like every other refusal.

import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { decideRequest } from '../policy/content.js';
import type { CompiledEnvironment } from '../policy/decide.js';
import { findSecret, formatsFor, SecretScanner, type SecretFormat } from '../policy/secrets.js';
import type { Target } from '../policy/types.js';

export type ContentVerdict =
  | { allow: true; rule?: string; detail?: string }
  | { allow: false; reason: 'content_filtered' | 'secret_detected' | 'bad_request'; rule?: string; detail?: string };

export interface RequestHead {
  method: string;
  /** Origin-form target, query included. */
  path: string;
  /** The headers as they will go upstream: endToEndHeaders(rawHeaders), Host included. */
  headers: string[];
  contentLength: string | undefined;
}

/** Rules, the declared body size, and secrets in the request line and forwarded headers. */
export function checkRequestHead(env: CompiledEnvironment, formats: readonly SecretFormat[], target: Target, head: RequestHead): ContentVerdict {
  const content = env.content;
  const decision = decideRequest(content, env.policy.id, { host: target.host, port: target.port, method: head.method, path: head.path });
  if (!decision.allow) return { allow: false, reason: decision.reason as 'content_filtered' | 'bad_request', rule: decision.rule };
  const limit = content.maxRequestBodyBytes;
  if (limit !== undefined && head.contentLength !== undefined && Number(head.contentLength) > limit) {
    return { allow: false, reason: 'content_filtered', rule: 'content.maxRequestBodyBytes' };
  }
  if (content.secrets === 'off') return decision.rule === undefined ? { allow: true } : { allow: true, rule: decision.rule };
  // Only what goes upstream is scanned: Proxy-Authorization (the session's own credential) is not forwarded.
  const headers = head.headers;
  let text = `${head.method} ${head.path}\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\n`;
  const kind = findSecret(formatsFor(formats, target.host, target.port), text);
  if (kind === undefined) return decision.rule === undefined ? { allow: true } : { allow: true, rule: decision.rule };
  if (content.secrets === 'log') return { allow: true, rule: decision.rule, detail: `secret_logged:${kind}` };
  return { allow: false, reason: 'secret_detected', rule: `secret:${kind}` };
}

/** Thrown through the body stream when the body breaks the content policy. */
export class ContentRefusal extends Error {
  constructor(
    readonly reason: 'content_filtered' | 'secret_detected',
    readonly rule: string,
  ) {
    super(`${reason} (${rule})`);
  }
}

/**
 * Counts and scans a request body on its way upstream. Holds back the scanner's window so no
 * part of a credential leaves before it is recognised; fails with a ContentRefusal on the
 * first byte over `maxRequestBodyBytes` or the first credential (in `block` mode).
 */
export function createBodyFilter(env: CompiledEnvironment, formats: readonly SecretFormat[], target: Target, onLogged: (kind: string) => void): Transform | undefined {
  const content = env.content;
  const limit = content.maxRequestBodyBytes;
  const scanning = content.secrets !== 'off';
  if (limit === undefined && !scanning) return undefined;
  const scanner = scanning ? new SecretScanner(formatsFor(formats, target.host, target.port)) : undefined;
  let seen = 0;
  let logged = false;
  const judge = (): ContentRefusal | undefined => {
    const kind = scanner?.finding;
    if (kind === undefined) return undefined;
    if (content.secrets === 'block') return new ContentRefusal('secret_detected', `secret:${kind}`);
    if (!logged) {
      logged = true;
      onLogged(kind);
    }
    return undefined;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (limit !== undefined && seen > limit) {
        callback(new ContentRefusal('content_filtered', 'content.maxRequestBodyBytes'));
        return;
      }
      const cleared = scanner ? scanner.push(chunk) : chunk;
      const refusal = judge();
      if (refusal) callback(refusal);
      else callback(null, cleared.length > 0 ? cleared : undefined);
    },
    flush(callback: TransformCallback) {
      const rest = scanner?.end();
      const refusal = judge();
      if (refusal) callback(refusal);
      else callback(null, rest && rest.length > 0 ? rest : undefined);
    },
  });
}

export interface BodyStream {
  env: CompiledEnvironment;
  formats: readonly SecretFormat[];
  target: Target;
  onLogged: (kind: string) => void;
  /** A refusal mid-body; the upstream request has already been cut, so it never completes. */
  onRefused: (refusal: ContentRefusal) => void;
  isDone: () => boolean;
  /** The request declares no body: nothing to scan or count. */
  bodiless?: boolean;
}

/**
 * HTTP/1.1 requests have a body only when they declare one (RFC 9112 §6.3): most requests
 * (GET, HEAD) do not, and need no filter built for them.
 */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The body to send upstream: none (the source is still read to its end, so the connection can
 * take its next request), the client's own stream, or that stream through the content filter.
 * A refusal mid-body calls `cut` (which stops the upstream request) and then `onRefused`.
 */
export function bodyToSend(source: Readable, options: BodyStream, cut: () => void): Readable | null {
  if (options.bodiless) {
    source.resume();
    return null;
  }
  const filter = createBodyFilter(options.env, options.formats, options.target, options.onLogged);
  if (!filter) return source;
  filter.on('error', (error: Error) => {
    if (!(error instanceof ContentRefusal) || options.isDone()) return;
    cut();
    options.onRefused(error);
  });
  return source.pipe(filter);
}

/** Streams a request body into a Node client request, through the content filter when the environment has one. */
export function streamBody(source: Readable, upstreamReq: ClientRequest, options: BodyStream): void {
  // Nothing to carry: no pipe (a dozen listeners and closures per request) for an empty body.
  const body = bodyToSend(source, options, () => upstreamReq.destroy());
  if (body === null) upstreamReq.end();
  else body.pipe(upstreamReq);
}
