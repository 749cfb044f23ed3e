// The network and the disk behind the proxy fail: upstreams refuse, reset mid-body or hang; the
// state folder stops accepting writes. Each fault gets its own answer (SPEC §4: 502/504 with a
// reason) or a clear error, the proxy stays healthy, and the policy in force is never half-changed.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentPolicy } from '../../src/policy/types.js';
import { repoRoot, tempDir } from '../helpers/gate.js';
import { parseResponseHead, rawExchange } from '../helpers/raw.js';
import { expectHealthy, noDns, rawClient, startBench, statusLines, type Bench } from './harness.js';

const connectTimeoutMs = 500;
const idleTimeoutMs = 2_000;

let bench: Bench;
const servers: Server[] = [];
const names = new Map<string, string>();

/** A raw TCP server on the exempt address that misbehaves as told. */
async function misbehaving(onConnection: (socket: Socket) => void): Promise<number> {
  const held = new Set<Socket>();
  const server = createServer((socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.on('close', () => {
    for (const socket of held) socket.destroy();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', resolve));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  bench = await startBench({ config: { proxy: { connectTimeoutMs, idleTimeoutMs } } });
  bench.gate.runtime.context.dial.lookup = async (host) => {
    const address = names.get(host);
    return address ? [{ address }] : noDns(host);
  };
  for (const name of ['refuses.test', 'resets.test', 'hangs.test', 'garbage.test']) names.set(name, '127.0.0.3');
});
afterAll(async () => {
  for (const server of servers) server.close();
  await bench?.stop();
});
afterEach(async () => {
  await expectHealthy(bench);
});

const get = async (host: string, port: number, path = '/'): Promise<string> =>
  rawExchange(bench.gate.proxyPort, `GET http://${host}:${port}${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n${bench.auth('full')}\r\nConnection: close\r\n\r\n`, { waitMs: 5_000 });
const connect = async (host: string, port: number): Promise<ReturnType<typeof parseResponseHead>> =>
  parseResponseHead(await rawExchange(bench.gate.proxyPort, `CONNECT ${host}:${port} HTTP/1.1\r\n${bench.auth('full')}\r\n\r\n`));

describe('upstream faults', () => {
  it('an upstream that refuses the connection → 502 upstream_unreachable', async () => {
    const port = await misbehaving(() => {});
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    const plain = parseResponseHead(await get('refuses.test', port));
    expect([plain.status, plain.headers['x-deny-reason']]).toEqual([502, 'upstream_unreachable']);
    const tunnel = await connect('refuses.test', port);
    expect([tunnel.status, tunnel.headers['x-deny-reason']]).toEqual([502, 'upstream_unreachable']);
    expect(tunnel.body).toContain('failed at egress-gate');
  });

  it('an upstream that resets mid-body: the client sees the connection cut, not a short 200', async () => {
    const port = await misbehaving((socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1_000)}`);
        setTimeout(() => socket.resetAndDestroy(), 50);
      });
    });
    const raw = await get('resets.test', port, '/reset');
    const response = parseResponseHead(raw);
    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBe('100000');
    // The proxy must not pretend the body was complete.
    expect(Buffer.byteLength(response.body, 'latin1')).toBeLessThan(100_000);
  });

  it('an upstream that resets a tunnel: the client connection is closed', async () => {
    const port = await misbehaving((socket) => {
      socket.once('data', () => {
        socket.write('partial');
        setTimeout(() => socket.resetAndDestroy(), 50);
      });
    });
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`CONNECT resets.test:${port} HTTP/1.1\r\n${bench.auth('full')}\r\n\r\n`);
      await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
      client.write('hello');
      await client.closedWithin(3_000);
      expect(client.text()).toContain('partial');
    } finally {
      client.destroy();
    }
  });

  // Regression: the client's idle timer cut the connection before the upstream timeout could answer.
  it('an upstream that accepts and never answers plain HTTP → 504 upstream_timeout, not a silent cut', async () => {
    const port = await misbehaving(() => {});
    const started = performance.now();
    const raw = await get('hangs.test', port, '/hang');
    const response = parseResponseHead(raw);
    expect([response.status, response.headers['x-deny-reason']], raw.slice(0, 200)).toEqual([504, 'upstream_timeout']);
    expect(performance.now() - started).toBeLessThan(connectTimeoutMs + idleTimeoutMs + 3_000);
  });

  it('an upstream that answers garbage → 502, and the proxy stays healthy', async () => {
    const port = await misbehaving((socket) => {
      socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.6\r\n\0\0\0garbage\r\n\r\n'));
    });
    const response = parseResponseHead(await get('garbage.test', port, '/garbage'));
    expect([response.status, response.headers['x-deny-reason']]).toEqual([502, 'upstream_unreachable']);
  });

  it('a tunnel to an upstream that accepts and never answers is closed after idleTimeoutMs', async () => {
    const port = await misbehaving(() => {});
    const client = await rawClient(bench.gate.proxyPort);
    try {
      client.write(`CONNECT hangs.test:${port} HTTP/1.1\r\n${bench.auth('full')}\r\n\r\n`);
      await client.waitFor((t) => t.startsWith('HTTP/1.1 200'));
      client.write('GET / HTTP/1.1\r\n\r\n');
      await client.closedWithin(idleTimeoutMs + 3_000);
      expect(statusLines(client.text())).toEqual([200]);
    } finally {
      client.destroy();
    }
  });
});

describe('the state folder stops accepting writes', () => {
  const strays = (dir: string): string[] => {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const path = join(d, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.tmp') || name.endsWith('.old')) out.push(path);
      }
    };
    walk(dir);
    return out;
  };

  const changed = (): EnvironmentPolicy => ({ ...(bench.gate.runtime.store.getEnvironment('app') as EnvironmentPolicy), allowedDomains: ['allowed.test', 'api.example.com', 'xn--bcher-kva.example', 'other.test'] });

  async function expectPolicyUnchanged(): Promise<void> {
    expect(bench.gate.runtime.store.getEnvironment('app')?.allowedDomains).not.toContain('other.test');
    const response = parseResponseHead(await rawExchange(bench.gate.proxyPort, `CONNECT other.test:${bench.upstream.port} HTTP/1.1\r\n${bench.auth('app')}\r\n\r\n`));
    expect([response.status, response.headers['x-deny-reason']]).toEqual([403, 'host_not_allowed']);
  }

  // Tests run as root in CI, where chmod stops nothing: the folder is made unwritable by
  // putting a file where it should be, and the target by putting a folder where it should be.
  it('the environments folder replaced by a file: the write rejects with the path, the policy is unchanged', async () => {
    const dir = join(bench.gate.stateDir, 'environments');
    renameSync(dir, `${dir}.moved`);
    writeFileSync(dir, 'not a folder');
    try {
      await expect(bench.gate.runtime.store.putEnvironment(changed())).rejects.toThrow(/environments/);
      await expectPolicyUnchanged();
    } finally {
      rmSync(dir);
      renameSync(`${dir}.moved`, dir);
    }
    expect(strays(bench.gate.stateDir)).toEqual([]);
    expect(readFileSync(join(dir, 'app.yaml'), 'utf8')).not.toContain('other.test');
  });

  it('the policy file cannot be replaced (a folder in its place): the temp file is removed, the policy is unchanged', async () => {
    const file = join(bench.gate.stateDir, 'environments', 'app.yaml');
    renameSync(file, `${file}.moved`);
    mkdirSync(join(file, 'blocker'), { recursive: true });
    try {
      await expect(bench.gate.runtime.store.putEnvironment(changed())).rejects.toThrow(/app\.yaml/);
      await expectPolicyUnchanged();
      expect(strays(bench.gate.stateDir)).toEqual([]);
    } finally {
      rmSync(file, { recursive: true });
      renameSync(`${file}.moved`, file);
    }
  });

  it('the disk fills up mid-write (RLIMIT_FSIZE in a child): EFBIG, the old file intact, no temp file left', () => {
    // A file size limit is the one "disk full" an unprivileged or root test can impose without a
    // mount: writes beyond it fail with EFBIG, exactly where ENOSPC would.
    const dir = tempDir('egress-gate-full-');
    const script = join(dir, 'put.mjs');
    writeFileSync(
      script,
      `import { FileStateStore } from ${JSON.stringify(join(repoRoot, 'dist/state/file-store.js'))};
const store = new FileStateStore(${JSON.stringify(join(dir, 'state'))});
await store.load();
const small = { id: 'web', access: 'custom', allowedDomains: ['a.example.com'] };
await store.putEnvironment(small);
const big = { ...small, allowedDomains: Array.from({ length: 2000 }, (_, i) => 'host-' + i + '.example.com') };
let error;
try { await store.putEnvironment(big); } catch (e) { error = e.code + ' ' + e.message; }
console.log(JSON.stringify({ error, inMemory: store.getEnvironment('web').allowedDomains.length }));
`,
    );
    const out = execFileSync('bash', ['-c', `ulimit -f 8 && exec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)}`], { encoding: 'utf8' });
    const result = JSON.parse(out) as { error: string; inMemory: number };
    expect(result.error).toMatch(/^EFBIG /);
    expect(result.inMemory).toBe(1);
    expect(readFileSync(join(dir, 'state', 'environments', 'web.yaml'), 'utf8')).toContain('a.example.com');
    expect(strays(join(dir, 'state'))).toEqual([]);
    expect(existsSync(join(dir, 'state', 'environments', 'web.yaml'))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });
});
