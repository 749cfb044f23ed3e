// Prometheus metrics. Label values are bounded: environment ids (unknown ones fold into
// "unknown"), decision, reason codes, direction. No host, URL or session label: a sandbox
// that sprays random hostnames must not be able to grow the metric set without bound.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'environment' | 'decision' | 'reason'>;
  activeConnections: Gauge;
  tunnelBytes: Counter<'environment' | 'direction'>;
  decisionDuration: Histogram;
  policyReloads: Counter<'result'>;
  rateLimited: Counter<'environment' | 'scope'>;
  upstreamConnect: Histogram;
  dnsDuration: Histogram;
  errors: Counter<'type'>;
  policyEntries: Gauge<'environment'>;
  buildInfo: Gauge<'version' | 'node'>;
}

export function createMetrics(version: string): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics: Metrics = {
    registry,
    requests: new Counter({ name: 'egress_requests_total', help: 'Requests and tunnels by decision and reason', labelNames: ['environment', 'decision', 'reason'], registers: [registry] }),
    activeConnections: new Gauge({ name: 'egress_active_connections', help: 'Client connections open now', registers: [registry] }),
    tunnelBytes: new Counter({ name: 'egress_tunnel_bytes_total', help: 'Bytes through tunnels and forwarded requests', labelNames: ['environment', 'direction'], registers: [registry] }),
    decisionDuration: new Histogram({ name: 'egress_decision_duration_seconds', help: 'Time from request to decision (identity, policy, limits, DNS)', buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1], registers: [registry] }),
    policyReloads: new Counter({ name: 'egress_policy_reloads_total', help: 'Policy reloads by result', labelNames: ['result'], registers: [registry] }),
    rateLimited: new Counter({ name: 'egress_rate_limited_total', help: 'Refusals by the rate limiter, by bucket', labelNames: ['environment', 'scope'], registers: [registry] }),
    upstreamConnect: new Histogram({ name: 'egress_upstream_connect_seconds', help: 'TCP connect time to upstreams', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] }),
    dnsDuration: new Histogram({ name: 'egress_dns_lookup_seconds', help: 'DNS resolution time', buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] }),
    errors: new Counter({ name: 'egress_errors_total', help: 'Errors by type', labelNames: ['type'], registers: [registry] }),
    policyEntries: new Gauge({ name: 'egress_policy_entries', help: 'Compiled allow and deny entries per environment', labelNames: ['environment'], registers: [registry] }),
    buildInfo: new Gauge({ name: 'egress_build_info', help: 'Build information', labelNames: ['version', 'node'], registers: [registry] }),
  };
  metrics.buildInfo.labels(version, process.version).set(1);
  metrics.policyReloads.inc({ result: 'success' }, 0);
  metrics.policyReloads.inc({ result: 'failure' }, 0);
  return metrics;
}
