// Prometheus metrics. Label values are bounded: environment ids (unknown ones fold into
// "unknown"), decision, reason codes, direction. No host, URL or session label: a sandbox
// that sprays random hostnames must not be able to grow the metric set without bound. The one
// exception is opt-in (`metrics.hostLabels`), and even then capped (`metrics.maxHostLabels`).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { TalliedHistogram, talliedCounter, type Tally } from './metrics-tally.js';

export interface Metrics {
  registry: Registry;
  /** Counted through `requestTally` (metrics-tally.ts), as are the other tallied counters. */
  requests: Counter<'environment' | 'decision' | 'reason'>;
  requestTally: Tally<'environment' | 'decision' | 'reason'>;
  activeConnections: Gauge;
  tunnelBytes: Counter<'environment' | 'direction'>;
  tunnelBytesTally: Tally<'environment' | 'direction'>;
  decisionDuration: TalliedHistogram;
  policyReloads: Counter<'result'>;
  rateLimited: Counter<'environment' | 'scope'>;
  upstreamConnect: TalliedHistogram;
  dnsDuration: TalliedHistogram;
  errors: Counter<'type'>;
  policyEntries: Gauge<'environment'>;
  buildInfo: Gauge<'version' | 'node'>;
  bytes: Counter<'environment' | 'direction' | 'kind'>;
  bytesTally: Tally<'environment' | 'direction' | 'kind'>;
  rateLimitedSessions: RecentSessions;
  /** Only when an operator opts in with `metrics.hostLabels`. */
  hostRequests: Counter<'environment' | 'host' | 'decision'> | undefined;
}

export interface MetricsOptions {
  hostLabels: boolean;
}

/** How long a session counts as rate-limited after its last refusal. */
export const RATE_LIMITED_WINDOW_MS = 60_000;

/**
 * Sessions refused by the limiter in the last minute, per environment: "who is being slowed"
 * as a number, without a session label. Old entries are pruned whenever it is read or grows.
 */
export class RecentSessions {
  private readonly last = new Map<string, { environment: string; at: number }>();

  note(environment: string, session: string): void {
    this.last.set(`${environment}\u0000${session}`, { environment, at: Date.now() });
    if (this.last.size > 10_000) this.prune();
  }

  private prune(): void {
    const oldest = Date.now() - RATE_LIMITED_WINDOW_MS;
    for (const [key, entry] of this.last) if (entry.at < oldest) this.last.delete(key);
  }

  countByEnvironment(): Map<string, number> {
    this.prune();
    const counts = new Map<string, number>();
    for (const { environment } of this.last.values()) counts.set(environment, (counts.get(environment) ?? 0) + 1);
    return counts;
  }
}

export function createMetrics(version: string, options: MetricsOptions = { hostLabels: false }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rateLimitedSessions = new RecentSessions();
  const requests = talliedCounter({ name: 'egress_requests_total', help: 'Requests and tunnels by decision and reason', labelNames: ['environment', 'decision', 'reason'], registers: [registry] });
  const tunnelBytes = talliedCounter({ name: 'egress_tunnel_bytes_total', help: 'Bytes through CONNECT tunnels (up: client to upstream)', labelNames: ['environment', 'direction'], registers: [registry] });
  const bytes = talliedCounter({ name: 'egress_bytes_total', help: 'Bytes per environment: whole tunnels, and request and response bodies of plain HTTP', labelNames: ['environment', 'direction', 'kind'], registers: [registry] });
  const metrics: Metrics = {
    registry,
    requests: requests.counter,
    requestTally: requests.tally,
    activeConnections: new Gauge({ name: 'egress_active_connections', help: 'Client connections open now', registers: [registry] }),
    tunnelBytes: tunnelBytes.counter,
    tunnelBytesTally: tunnelBytes.tally,
    decisionDuration: new TalliedHistogram('egress_decision_duration_seconds', 'Time from request to decision (identity, policy, limits, DNS)', [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1], registry),
    policyReloads: new Counter({ name: 'egress_policy_reloads_total', help: 'Policy reloads by result', labelNames: ['result'], registers: [registry] }),
    rateLimited: new Counter({ name: 'egress_rate_limited_total', help: 'Refusals by the rate limiter, by bucket', labelNames: ['environment', 'scope'], registers: [registry] }),
    upstreamConnect: new TalliedHistogram('egress_upstream_connect_seconds', 'TCP connect time to upstreams', [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registry),
    dnsDuration: new TalliedHistogram('egress_dns_lookup_seconds', 'DNS resolution time', [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registry),
    errors: new Counter({ name: 'egress_errors_total', help: 'Errors by type', labelNames: ['type'], registers: [registry] }),
    policyEntries: new Gauge({ name: 'egress_policy_entries', help: 'Compiled allow and deny entries per environment', labelNames: ['environment'], registers: [registry] }),
    buildInfo: new Gauge({ name: 'egress_build_info', help: 'Build information', labelNames: ['version', 'node'], registers: [registry] }),
    bytes: bytes.counter,
    bytesTally: bytes.tally,
    rateLimitedSessions,
    hostRequests: options.hostLabels
      ? new Counter({ name: 'egress_host_requests_total', help: 'Requests and tunnels by destination host (opt-in; hosts beyond metrics.maxHostLabels fold into "other")', labelNames: ['environment', 'host', 'decision'], registers: [registry] })
      : undefined,
  };
  new Gauge({
    name: 'egress_rate_limited_sessions',
    help: `Sessions refused by the rate limiter in the last ${RATE_LIMITED_WINDOW_MS / 1000} s`,
    labelNames: ['environment'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [environment, count] of rateLimitedSessions.countByEnvironment()) this.set({ environment }, count);
    },
  });
  metrics.buildInfo.labels(version, process.version).set(1);
  metrics.policyReloads.inc({ result: 'success' }, 0);
  metrics.policyReloads.inc({ result: 'failure' }, 0);
  return metrics;
}
