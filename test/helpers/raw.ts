// Raw bytes over a real socket: for CONNECT refusals and hostile input that a client library
// would clean up before sending.

import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

export function parseResponseHead(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end < 0 ? '' : raw.slice(end + 4), raw };
}

/** Sends `bytes`, reads until the peer closes or `waitMs` of silence after the first response. */
export function rawExchange(port: number, bytes: string | Buffer, options: { waitMs?: number; host?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host ?? '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let idle: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(idle);
      clearTimeout(hard);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const hard = setTimeout(done, 10_000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      clearTimeout(idle);
      idle = setTimeout(done, options.waitMs ?? 300);
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', (e) => (chunks.length ? done() : reject(e)));
    socket.write(bytes);
  });
}

export async function rawConnect(port: number, authority: string, headers: string[] = []): Promise<RawResponse> {
  const raw = await rawExchange(port, [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, ...headers, '', ''].join('\r\n'));
  return parseResponseHead(raw);
}

export function basicAuth(user: string, password: string): string {
  return `Proxy-Authorization: Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
