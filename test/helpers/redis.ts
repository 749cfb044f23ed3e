// A real redis-server on loopback for the scale-out tests: its own port and folder, an
// append-only file synced on every write (as a production Redis holding policy would have),
// and stop (SIGKILL) / start to simulate an outage.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, up: boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = connect({ host: '127.0.0.1', port });
      const retry = (): void => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`redis on ${port} did not become ${up ? 'ready' : 'gone'}`));
        else setTimeout(attempt, 50);
      };
      socket.once('connect', () => (up ? (socket.destroy(), resolve()) : retry()));
      socket.once('error', () => (up ? retry() : (socket.destroy(), resolve())));
    };
    attempt();
  });
}

/**
 * A port below the kernel's ephemeral range (32768 and up): while Redis is stopped for an
 * outage test, no other test's listen(0) can be handed its port, so the restart gets it back.
 */
async function redisPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Up means Redis itself answers: a PING gets +PONG (not merely something listening). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data: Buffer) => done(data.toString().startsWith('+PONG')));
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const port = await redisPort();
  const dir = mkdtempSync(join(tmpdir(), 'egress-gate-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes'], { stdio: 'ignore' });
    await waitForPort(port, true);
    for (let i = 0; i < 100 && !(await pong(port)); i++) await new Promise((r) => setTimeout(r, 50));
    if (child?.exitCode !== null || !(await pong(port))) throw new Error(`redis-server did not come up on ${port}`);
  };
  const stop = async (): Promise<void> => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    await waitForPort(port, false);
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, start, stop };
}
