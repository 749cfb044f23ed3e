// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded,
// nor is anything the client meant for the proxy (Proxy-Authorization above all).

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Filters a raw [name, value, name, value, ...] list, keeping order and case. */
export function endToEndHeaders(raw: string[], skipHost = false): string[] {
  // Headers a Connection header names are hop-by-hop too; most messages name none beyond the
  // hop-by-hop ones already dropped (`keep-alive`, `close`), and get no set built for them.
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue;
    for (const token of (raw[i + 1] as string).split(',')) {
      const name = token.trim().toLowerCase();
      if (!hopByHop.has(name)) (named ??= new Set()).add(name);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (hopByHop.has(name) || named?.has(name) || name.startsWith('proxy-') || (skipHost && name === 'host')) continue;
    out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/**
 * What a forwarded request sends upstream: `Host` naming exactly the checked target, then the
 * end-to-end headers without the client's own Host and without `Expect` (Node's server has
 * already answered `100-continue`, so the client is sending its body, and an upstream asked to
 * answer it first would hold the body back waiting for a `100 Continue` nobody reads).
 */
export function upstreamHeaders(endToEnd: string[], host: string): string[] {
  const out = ['Host', host];
  for (let i = 0; i < endToEnd.length; i += 2) {
    const name = (endToEnd[i] as string).toLowerCase();
    if (name !== 'host' && name !== 'expect') out.push(endToEnd[i] as string, endToEnd[i + 1] as string);
  }
  return out;
}
