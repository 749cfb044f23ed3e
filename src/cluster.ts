// `workers: N`: N processes serve the same listeners (Node cluster, connections spread by the
// primary). Shared state keeps its meaning across them:
// - rate-limit buckets live in the primary (rate-limiter-flexible's cluster master) unless
//   Redis holds them;
// - with the file store, a worker that writes announces it, and the primary tells the others
//   to re-read the state folder, so a session created through one worker's admin API works on
//   every worker as soon as the write is acknowledged there plus one IPC round trip.

import cluster, { type Worker } from 'node:cluster';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import type { StateStore } from './state/store.js';

const stateChanged = 'egress-gate:state-changed';

export function runPrimary(workers: number, log: (message: string, fields?: Record<string, unknown>) => void, graceMs: number): void {
  new RateLimiterClusterMaster();
  let stopping = false;
  const fork = (): Worker => cluster.fork();
  for (let i = 0; i < workers; i++) fork();
  cluster.on('message', (from, message: unknown) => {
    if (message !== stateChanged) return;
    for (const worker of Object.values(cluster.workers ?? {})) if (worker && worker !== from) worker.send(stateChanged);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    log('worker exited; starting another', { pid: worker.process.pid, code, signal });
    setTimeout(fork, 500).unref();
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

/** In a worker: tell the primary about local writes, and re-read when another worker wrote. */
export function joinCluster(store: StateStore, reread: () => void): void {
  if (!cluster.isWorker) return;
  store.on('written', () => process.send?.(stateChanged));
  process.on('message', (message: unknown) => {
    if (message === stateChanged) reread();
  });
}
