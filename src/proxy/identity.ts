// Proxy-Authorization: Basic base64(<sessionId>:<token>). Parsing only; the runtime decides.

export type Credentials =
  | { kind: 'none' }
  | { kind: 'basic'; sessionId: string; token: string }
  | { kind: 'malformed' };

const maxCredentialLength = 1024;

/**
 * The Proxy-Authorization field lines of a request, as parseProxyAuthorization wants them. Node
 * keeps only the first of duplicated credential headers in `req.headers`, which made the
 * duplicate check below dead code; the raw lines are counted instead.
 */
export function proxyAuthorizationOf(rawHeaders: string[]): string | string[] | undefined {
  const values = rawHeaders.filter((_, i) => i % 2 === 1 && (rawHeaders[i - 1] as string).toLowerCase() === 'proxy-authorization');
  return values.length <= 1 ? values[0] : values;
}

export function parseProxyAuthorization(header: string | string[] | undefined): Credentials {
  if (header === undefined) return { kind: 'none' };
  // Two Proxy-Authorization headers: which one counts is exactly what an attacker wants to choose.
  if (Array.isArray(header) || header.length > maxCredentialLength) return { kind: 'malformed' };
  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!match) return { kind: 'malformed' };
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return { kind: 'malformed' };
  const sessionId = decoded.slice(0, colon);
  const token = decoded.slice(colon + 1);
  if (token === '' || /[\x00-\x1f\x7f]/.test(decoded)) return { kind: 'malformed' };
  return { kind: 'basic', sessionId, token };
}
