// `workers: N`: N processes serve the same listeners (Node cluster, connections spread by the
// primary). Shared state keeps the meaning it has in one process:
// - rate-limit buckets live in the primary (rate-limiter-flexible's cluster master) unless
//   Redis holds them;
// - with the file store, a worker's write is acknowledged only after every other worker has
//   re-read the state folder (a barrier through the primary, bounded by a timeout), so a
//   session created through one worker's admin API works on every worker when the API answers.

import cluster, { type Worker } from 'node:cluster';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { FileStateStore } from './state/file-store.js';

type Message =
  | { type: 'egress-gate:written'; seq: number }
  | { type: 'egress-gate:reread'; seq: number; origin: number }
  | { type: 'egress-gate:reread-done'; seq: number; origin: number }
  | { type: 'egress-gate:written-done'; seq: number };

const barrierTimeoutMs = 1_000;

const isMessage = (value: unknown): value is Message => typeof value === 'object' && value !== null && String((value as { type?: unknown }).type).startsWith('egress-gate:');

export function runPrimary(workers: number, log: (message: string, fields?: Record<string, unknown>) => void, graceMs: number): void {
  new RateLimiterClusterMaster();
  let stopping = false;
  const waiting = new Map<string, { pending: Set<number>; done: () => void }>();
  for (let i = 0; i < workers; i++) cluster.fork();

  cluster.on('message', (from: Worker, message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === 'egress-gate:written') {
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
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    log('worker exited; starting another', { pid: worker.process.pid, code, signal });
    setTimeout(() => cluster.fork(), 500).unref();
  });
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), graceMs + 2_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
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
