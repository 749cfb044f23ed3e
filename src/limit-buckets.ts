// Where rate-limit buckets live. One process: memory. Several workers on one machine: the
// cluster primary holds them (rate-limiter-flexible's cluster limiter, over IPC). Several
// replicas: Redis, with a memory bucket as insurance while Redis is out of reach, so a Redis
// outage degrades limits to per-replica instead of switching them off or refusing traffic.

import cluster from 'node:cluster';
import type { Redis } from 'ioredis';
import { RateLimiterCluster, RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { BucketFactory } from './limits.js';

/** Redis keys expire in whole seconds: a window shorter than one second would never expire. */
const wholeSeconds = (duration: number): number => Math.max(1, Math.ceil(duration));

export function redisBuckets(client: Redis): BucketFactory {
  return (points, duration, keyPrefix): RateLimiterAbstract =>
    new RateLimiterRedis({
      storeClient: client,
      points,
      duration: wholeSeconds(duration),
      keyPrefix,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ points, duration, keyPrefix: `${keyPrefix}:insurance` }),
    });
}

export function clusterBuckets(): BucketFactory {
  return (points, duration, keyPrefix): RateLimiterAbstract =>
    new RateLimiterCluster({ points, duration: wholeSeconds(duration), keyPrefix, timeoutMs: 1_000 }) as unknown as RateLimiterAbstract;
}

export const inClusterWorker = (): boolean => cluster.isWorker;
