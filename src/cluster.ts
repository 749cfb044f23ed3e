// `workers: N`: N processes serve the same listeners (Node cluster, connections spread by the
// primary). Shared state keeps the meaning it has in one process:
// - rate-limit buckets live in the primary (rate-limiter-flexible's cluster master) unless
//   Redis holds them;
// - with the file store, a worker's write is acknowledged only after every other worker has
//   re-read the state folder (a barrier through the primary, bounded by a timeout), so a
//   session created through one worker's admin API works on every worker when the API answers.
// A worker that dies after it started listening is replaced. One that dies before it listened
// (a port taken, a config broken since the primary read it) is replaced only while another
// worker serves; when none does, the primary stops with the worker's exit code, so that a
// supervisor sees the failure instead of a gate that ended "successfully" serving nothing.

import cluster, { type Worker } from 'node:cluster';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { FileStateStore } from './state/file-store.js';

type Message =
  | { type: 'egress-gate:listening' }
  | { type: 'egress-gate:written'; seq: number }
  | { type: 'egress-gate:reread'; seq: number; origin: number }
  | { type: 'egress-gate:reread-done'; seq: number; origin: number }
  | { type: 'egress-gate:written-done'; seq: number };

const barrierTimeoutMs = 1_000;
const restartDelayMs = 500;
// A replacement that cannot start is tried again, each time twice as late, up to this.
const maxRestartDelayMs = 30_000;

const isMessage = (value: unknown): value is Message => typeof value === 'object' && value !== null && String((value as { type?: unknown }).type).startsWith('egress-gate:');

export function runPrimary(workers: number, log: (level: 'info' | 'error', message: string, fields?: Record<string, unknown>) => void, graceMs: number): void {
  new RateLimiterClusterMaster();
  /** Set once the primary is stopping: the code it exits with when its last worker is gone. */
  let stoppingWith: number | undefined;
  const listening = new Set<number>();
  let failedStartDelay = restartDelayMs;
  const waiting = new Map<string, { pending: Set<number>; done: () => void }>();
  for (let i = 0; i < workers; i++) cluster.fork();

  cluster.on('message', (from: Worker, message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === 'egress-gate:listening') {
      listening.add(from.id);
      failedStartDelay = restartDelayMs;
    } else if (message.type === 'egress-gate:written') {
      const key = `${from.id}:${message.seq}`;
      const others = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w !== from && w.isConnected());
      const done = (): void => {
        clearTimeout(timer);
        waiting.delete(key);
        if (from.isConnected()) from.send({ type: 'egress-gate:written-done', seq: message.seq } satisfies Message);
      };
      const timer = setTimeout(done, barrierTimeoutMs);
      waiting.set(key, { pending: new Set(others.map((w) => w.id)), done });
      if (others.length === 0) done();
      for (const worker of others) worker.send({ type: 'egress-gate:reread', seq: message.seq, origin: from.id } satisfies Message);
    } else if (message.type === 'egress-gate:reread-done') {
      const entry = waiting.get(`${message.origin}:${message.seq}`);
      entry?.pending.delete(from.id);
      if (entry && entry.pending.size === 0) entry.done();
    }
  });
  const replace = (delayMs: number): void => {
    setTimeout(() => stoppingWith !== undefined || cluster.fork(), delayMs);
  };
  const stop = (code: number): void => {
    if (stoppingWith !== undefined) return;
    stoppingWith = code;
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (alive.length === 0) process.exit(code);
    for (const worker of alive) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(code), graceMs + 2_000).unref();
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stoppingWith !== undefined) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(stoppingWith);
      return;
    }
    const hadStarted = listening.delete(worker.id);
    if (hadStarted) {
      log('info', 'worker exited; starting another', { pid: worker.process.pid, code, signal });
      replace(restartDelayMs);
    } else if (listening.size > 0) {
      log('error', 'worker exited before it listened; starting another later', { pid: worker.process.pid, code, signal, delayMs: failedStartDelay });
      replace(failedStartDelay);
      failedStartDelay = Math.min(failedStartDelay * 2, maxRestartDelayMs);
    } else {
      log('error', 'worker exited before it listened and no worker serves; stopping', { pid: worker.process.pid, code, signal });
      stop(code === 0 || code === null ? 1 : code);
    }
  });
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
}

/** In a worker: tells the primary that this worker serves, so that its death is a crash to repair. */
export function announceListening(): void {
  if (cluster.isWorker) process.send?.({ type: 'egress-gate:listening' } satisfies Message);
}

/** In a worker with the file store: the write barrier, and re-reads when another worker wrote. */
export function joinCluster(store: FileStateStore, reread: () => Promise<void>): void {
  if (!cluster.isWorker) return;
  let seq = 0;
  const acknowledgements = new Map<number, () => void>();
  store.afterWrite = () =>
    new Promise<void>((resolve) => {
      const mine = ++seq;
      const settle = (): void => {
        clearTimeout(timer);
        acknowledgements.delete(mine);
        resolve();
      };
      const timer = setTimeout(settle, barrierTimeoutMs + 500);
      acknowledgements.set(mine, settle);
      process.send?.({ type: 'egress-gate:written', seq: mine } satisfies Message);
    });
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === 'egress-gate:written-done') acknowledgements.get(message.seq)?.();
    else if (message.type === 'egress-gate:reread') {
      void reread().finally(() => process.send?.({ type: 'egress-gate:reread-done', seq: message.seq, origin: message.origin } satisfies Message));
    }
  });
}
