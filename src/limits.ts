// Abuse controls: request buckets and connection caps, per session, per session and host, and
// per environment, plus the byte budgets that shape tunnels. Buckets are made by a
// BucketFactory and used only through rate-limiter-flexible's RateLimiterAbstract interface, so
// that its Redis backend can replace the memory one for several replicas without touching the
// proxy.
//
// rate-limiter-flexible counts points in windows; a window of `burst` points lasting
// `burst / requestsPerSecond` seconds stands in for the token bucket: a burst gets exactly
// `burst` requests, the long-run rate is `requestsPerSecond`, and the refill arrives at the end
// of the window (docs/decisions.md says why this and not a continuous refill).

import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from './config/types.js';
import type { CompiledEnvironment } from './policy/decide.js';
import type { LimitVerdict, Limiter } from './proxy/context.js';
import { SessionBandwidth, type Shaping } from './proxy/throttle.js';

/**
 * The seam for other backends (src/limit-buckets.ts): `points` per window of `durationSeconds`,
 * never under one second but possibly fractional, keys under `keyPrefix`.
 */
/** Open connections per session counted across replicas (Redis); see limit-buckets.ts. */
export interface SharedConnectionCounter {
  acquire(sessionKey: string, max: number): Promise<{ ok: true; release: () => void } | { ok: false; open: number }>;
}

export type BucketFactory = (points: number, durationSeconds: number, keyPrefix: string) => RateLimiterAbstract;

export const memoryBuckets: BucketFactory = (points, duration, keyPrefix) => new RateLimiterMemory({ points, duration, keyPrefix });

interface BucketSpec {
  scope: 'session' | 'host' | 'environment';
  rate: number;
  burst: number;
}

/**
 * A window must last at least a second: rate-limiter-flexible's Redis and cluster backends keep
 * whole seconds of expiry, and a shorter window would never expire. A burst below one second's
 * worth of requests is therefore raised to that (the long-run rate is unchanged).
 */
function bucketSpec(scope: BucketSpec['scope'], rate: number, burst: number): BucketSpec {
  return { scope, rate, burst: Math.max(burst, Math.ceil(rate)) };
}

/**
 * A session's place among its open connections, given back once by `release`. One object
 * rather than a closure and its context: a tunnel holds it for as long as it is open, and idle
 * tunnels are counted in thousands.
 */
class OpenSlot {
  readonly ok = true as const;
  private released = false;
  sharedRelease: (() => void) | undefined;

  constructor(
    private readonly counts: Map<string, number>,
    private readonly sessionKey: string,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.sharedRelease?.();
    const now = (this.counts.get(this.sessionKey) ?? 1) - 1;
    if (now <= 0) this.counts.delete(this.sessionKey);
    else this.counts.set(this.sessionKey, now);
  }
}

export class Limits implements Limiter {
  private readonly buckets = new Map<string, RateLimiterAbstract>();
  /** Per compiled environment (an immutable snapshot): its buckets, resolved once, not per request. */
  private readonly resolved = new WeakMap<CompiledEnvironment, { spec: BucketSpec; bucket: RateLimiterAbstract }[]>();
  private readonly openCount = new Map<string, number>();
  private readonly bandwidthBySession = new SessionBandwidth();

  constructor(
    private readonly config: Config['limits'],
    private readonly makeBucket: BucketFactory = memoryBuckets,
    private readonly sharedConnections?: SharedConnectionCounter,
  ) {}

  private bucket(spec: BucketSpec): RateLimiterAbstract {
    const name = `${spec.scope}:${spec.rate}:${spec.burst}`;
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = this.makeBucket(spec.burst, spec.burst / spec.rate, `egress:${name}`);
      this.buckets.set(name, bucket);
    }
    return bucket;
  }

  private specs(environment: CompiledEnvironment): BucketSpec[] {
    const override = environment.policy.rateLimit ?? {};
    const limits = this.config;
    const specs = [bucketSpec('session', override.requestsPerSecond ?? limits.requestsPerSecond, override.burst ?? limits.burst)];
    if (limits.perHostRequestsPerSecond > 0) specs.push(bucketSpec('host', limits.perHostRequestsPerSecond, limits.perHostBurst));
    if (limits.environmentRequestsPerSecond > 0) specs.push(bucketSpec('environment', limits.environmentRequestsPerSecond, limits.environmentBurst));
    return specs;
  }

  private bucketsFor(environment: CompiledEnvironment): { spec: BucketSpec; bucket: RateLimiterAbstract }[] {
    let buckets = this.resolved.get(environment);
    if (!buckets) {
      buckets = this.specs(environment).map((spec) => ({ spec, bucket: this.bucket(spec) }));
      this.resolved.set(environment, buckets);
    }
    return buckets;
  }

  async take(who: { sessionKey: string; environment: string; host: string }, environment: CompiledEnvironment): Promise<LimitVerdict> {
    for (const { spec, bucket } of this.bucketsFor(environment)) {
      const key = spec.scope === 'session' ? who.sessionKey : spec.scope === 'host' ? `${who.sessionKey}|${who.host}` : who.environment;
      try {
        await bucket.consume(key, 1);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return {
          ok: false,
          scope: spec.scope,
          // The window ends in msBeforeNext: that is when the bucket is full again.
          retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)),
          state: { scope: spec.scope, burst: spec.burst, perSecond: spec.rate, consumed: rejection.consumedPoints, remaining: rejection.remainingPoints, msBeforeNext: rejection.msBeforeNext },
        };
      }
    }
    return { ok: true };
  }

  /**
   * A slot among the session's open connections. Counted here, and, with several replicas, in
   * the shared counter too (so the cap holds across replicas); when the shared counter is out of
   * reach, the local count alone decides, as for the request buckets' insurance.
   */
  async open(sessionKey: string, environment: CompiledEnvironment): Promise<LimitVerdict & { release?: () => void }> {
    const max = environment.policy.rateLimit?.maxConnections ?? this.config.maxConnections;
    const current = this.openCount.get(sessionKey) ?? 0;
    if (current >= max) {
      return { ok: false, scope: 'connections', retryAfterSeconds: 1, state: { scope: 'connections', limit: max, open: current } };
    }
    this.openCount.set(sessionKey, current + 1);
    const slot = new OpenSlot(this.openCount, sessionKey);
    if (this.sharedConnections) {
      const shared = await this.sharedConnections.acquire(sessionKey, max);
      if (!shared.ok) {
        slot.release();
        return { ok: false, scope: 'connections', retryAfterSeconds: 1, state: { scope: 'connections', limit: max, open: shared.open, shared: true } };
      }
      slot.sharedRelease = shared.release;
    }
    return slot;
  }

  bandwidth(sessionKey: string, environment: CompiledEnvironment): Shaping | undefined {
    const bytesPerSecond = environment.policy.rateLimit?.bandwidthBytesPerSecond ?? this.config.bandwidthBytesPerSecond;
    return bytesPerSecond > 0 ? this.bandwidthBySession.acquire(sessionKey, bytesPerSecond) : undefined;
  }
}
