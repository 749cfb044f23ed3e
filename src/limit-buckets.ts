// Where rate-limit buckets live. One process: memory. Several workers on one machine: the
// cluster primary holds them (rate-limiter-flexible's cluster limiter, over IPC). Several
// replicas: Redis, with a memory bucket as insurance while Redis is out of reach, so a Redis
// outage degrades limits to per-replica instead of switching them off or refusing traffic.

import cluster from 'node:cluster';
import type { Redis } from 'ioredis';
import { RateLimiterCluster, RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { BucketFactory, SharedConnectionCounter } from './limits.js';

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

/**
 * Open connections per session across replicas: a Redis counter per session, raised on open
 * and lowered on close in one script each, so two replicas opening at once cannot both pass a
 * cap of one. The key expires an hour after its last change: a replica that dies with
 * connections open leaks its counts for at most that long. While Redis is out of reach each
 * replica counts alone (the local count in Limits), rather than refusing every connection.
 */
export function redisConnectionCounter(client: Redis, keyPrefix: string): SharedConnectionCounter {
  const ttlMs = 3_600_000;
  const acquire = `local n = redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], ARGV[2]) if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return -n end return n`;
  const release = `local n = redis.call('DECR', KEYS[1]) if n <= 0 then redis.call('DEL', KEYS[1]) end return n`;
  return {
    async acquire(sessionKey, max) {
      const key = `${keyPrefix}connections:${sessionKey}`;
      let result: number;
      try {
        result = Number(await client.eval(acquire, 1, key, String(max), String(ttlMs)));
      } catch {
        return { ok: true, release: () => {} };
      }
      if (result < 0) return { ok: false, open: -result - 1 };
      return { ok: true, release: () => void client.eval(release, 1, key).catch(() => {}) };
    },
  };
}
