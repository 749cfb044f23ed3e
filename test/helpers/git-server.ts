// A real smart-HTTP git server on loopback: `git http-backend` (CGI) behind a Node HTTPS server
// that stands in for github.com. It admits only the operator's real credential and records
// every Authorization header it saw.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.js';

export interface GitServer {
  port: number;
  root: string;
  authorizations: string[];
  requests: string[];
  createRepo(owner: string, name: string): Promise<void>;
  refs(owner: string, name: string): Promise<string>;
  close(): Promise<void>;
}

const gitEnv = { GIT_CONFIG_NOSYSTEM: '1', HOME: tmpdir(), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.test', PATH: process.env.PATH ?? '' };

export async function startGitServer(cert: { certPem: string; keyPem: string }, realAuthorization: string): Promise<GitServer> {
  const root = mkdtempSync(join(tmpdir(), 'egress-git-'));
  const authorizations: string[] = [];
  const requests: string[] = [];
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    authorizations.push(req.headers.authorization ?? '');
    requests.push(`${req.method} ${req.url}`);
    if (req.headers.authorization !== realAuthorization) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test git"' });
      res.end('credentials required\n');
      return;
    }
    const [pathInfo, query = ''] = (req.url ?? '/').split('?') as [string, string?];
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...gitEnv,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(pathInfo),
        QUERY_STRING: query,
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        REMOTE_USER: 'operator',
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    // The CGI may answer (and exit) before reading a body it does not need.
    cgi.stdin.on('error', () => {});
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => res.end());
    cgi.on('error', () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bare = (owner: string, name: string): string => join(root, owner, `${name}.git`);
  return {
    port: (server.address() as AddressInfo).port,
    root,
    authorizations,
    requests,
    async createRepo(owner, name) {
      mkdirSync(join(root, owner), { recursive: true });
      await run('git', ['init', '-q', '--bare', '-b', 'main', bare(owner, name)], { env: gitEnv });
      await run('git', ['-C', bare(owner, name), 'config', 'http.receivepack', 'true'], { env: gitEnv });
      const work = mkdtempSync(join(tmpdir(), 'egress-git-seed-'));
      await run('git', ['init', '-q', '-b', 'main', work], { env: gitEnv });
      writeFileSync(join(work, 'README'), `${owner}/${name}\n`);
      await run('git', ['-C', work, 'add', '.'], { env: gitEnv });
      await run('git', ['-C', work, 'commit', '-q', '-m', 'first'], { env: gitEnv });
      await run('git', ['-C', work, 'tag', 'v1'], { env: gitEnv });
      await run('git', ['-C', work, 'push', '-q', bare(owner, name), 'main', 'v1'], { env: gitEnv });
      await run('git', ['-C', work, 'push', '-q', bare(owner, name), 'main:refs/heads/claude/work'], { env: gitEnv });
    },
    async refs(owner, name) {
      return (await run('git', ['-C', bare(owner, name), 'for-each-ref', '--format=%(refname) %(objectname)'], { env: gitEnv })).stdout;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
