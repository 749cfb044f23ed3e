// What `egress-gate check` and GET /v1/check accept: a URL (http:// or https://) or
// HOST[:PORT], parsed by the proxy's own strict parsers so the harness judges what the wire sees.

import type { Target } from '../policy/types.js';
import { parseAbsoluteUri, parseAuthority } from './target.js';

/** HOST[:PORT] defaults to 443, an https URL to 443, an http URL to 80. */
export function parseCheckTarget(input: string): Target | string {
  const https = /^https:\/\//i.exec(input);
  if (https) {
    const parsed = parseAbsoluteUri(`http://${input.slice(https[0].length)}`);
    if (!parsed.ok) return parsed.why;
    const explicitPort = /:\d+$/.test(parsed.authority);
    return explicitPort ? parsed.target : { host: parsed.target.host, port: 443 };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    const parsed = parseAbsoluteUri(input);
    return parsed.ok ? parsed.target : parsed.why;
  }
  const parsed = parseAuthority(input, 443);
  return parsed.ok ? parsed.target : parsed.why;
}

