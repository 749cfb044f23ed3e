// Plain-HTTP requests through the proxy with Node's http client: absolute-form URI, credentials
// in Proxy-Authorization, a fresh connection per request (agent: false) so that nothing is
// pooled between requests a test counts.

import { request } from 'node:http';
import type { TestSession } from './sessions.js';

export interface ProxiedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function proxyRequest(proxyPort: number, session: Pick<TestSession, 'id' | 'token'> | undefined, url: string, options: { method?: string; body?: Buffer } = {}): Promise<ProxiedResponse> {
  const target = new URL(url);
  const headers: Record<string, string> = { host: target.host };
  if (session) headers['proxy-authorization'] = `Basic ${Buffer.from(`${session.id}:${session.token}`).toString('base64')}`;
  if (options.body) headers['content-length'] = String(options.body.length);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, method: options.method ?? 'GET', path: url, headers, agent: false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
