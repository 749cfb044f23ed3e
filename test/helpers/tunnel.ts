// An HTTP client whose connections are CONNECT tunnels through the proxy with TLS on top, made
// by hand so a test can choose what a library would not let it: the SNI, the Host header, the
// CA it trusts, and several requests on one kept-alive tunnel.

import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface TunnelOptions {
  proxyPort: number;
  /** "Basic ..." value of Proxy-Authorization, if any. */
  proxyAuthorization?: string;
  /** host:port of the CONNECT request. */
  authority: string;
  /** SNI sent in the TLS handshake (default: the CONNECT host). */
  servername?: string;
  ca: string | string[];
  /** Skip the host name check (to send an SNI the certificate does not cover). */
  anyName?: boolean;
}

function openTunnel(options: TunnelOptions, done: (error: Error | null, socket?: Socket) => void): void {
  const raw = netConnect({ host: '127.0.0.1', port: options.proxyPort });
  raw.once('error', (e) => done(e));
  raw.once('connect', () => {
    const auth = options.proxyAuthorization ? `Proxy-Authorization: ${options.proxyAuthorization}\r\n` : '';
    raw.write(`CONNECT ${options.authority} HTTP/1.1\r\nHost: ${options.authority}\r\n${auth}\r\n`);
  });
  let head = '';
  const onData = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    raw.off('data', onData);
    const status = Number(head.split(' ')[1]);
    if (status !== 200) {
      raw.destroy();
      done(Object.assign(new Error(`CONNECT answered ${status}`), { status, response: head }));
      return;
    }
    const host = options.authority.replace(/:\d+$/, '');
    const secure = tlsConnect({
      socket: raw,
      servername: options.servername ?? host,
      ca: options.ca,
      ALPNProtocols: ['http/1.1'],
      ...(options.anyName ? { checkServerIdentity: () => undefined } : {}),
    });
    secure.once('secureConnect', () => done(null, secure));
    secure.once('error', (e) => done(e));
  };
  raw.on('data', onData);
}

/** A kept-alive agent with one tunnel at a time: sequential requests share the tunnel. */
export function tunnelAgent(options: TunnelOptions): Agent & { tunnels: number } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 }) as Agent & { tunnels: number };
  agent.tunnels = 0;
  (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, callback: (e: Error | null, s?: Socket) => void) => {
    agent.tunnels += 1;
    openTunnel(options, callback);
    return undefined;
  };
  return agent;
}

export interface TunnelResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function send(agent: Agent, host: string, req: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<TunnelResponse> {
  return new Promise((resolve, reject) => {
    const r = request({ agent, host: '127.0.0.1', method: req.method ?? 'GET', path: req.path, headers: { host, ...req.headers }, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.setTimeout(20_000, () => r.destroy(new Error('timeout')));
    r.on('error', reject);
    r.end(req.body);
  });
}
