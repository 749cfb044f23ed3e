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

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'egress-gate-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes'], { stdio: 'ignore' });
    await waitForPort(port, true);
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
