// One decision record feeds the log line and the metrics, so the two never disagree.

import { createDecisionWriter, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { remember } from './policy/remember.js';
import type { DecisionRecord, ProxyObserver } from './proxy/context.js';

export interface ObserverOptions {
  /** Distinct host label values at most, when host labels are on; the rest count as "other". */
  maxHostLabels: number;
}

export function createObserver(log: Logger, metrics: Metrics, knownEnvironment: (id: string) => boolean, options: ObserverOptions = { maxHostLabels: 0 }): ProxyObserver {
  // A refused client can name any environment (a deleted one, a typo): only configured ids
  // become label values.
  const label = (environment: string): string => (environment && knownEnvironment(environment) ? environment : 'unknown');
  const writeDecision = createDecisionWriter(log);
  const hosts = new Set<string>();
  const hostLabel = (host: string): string => {
    if (hosts.has(host)) return host;
    if (hosts.size >= options.maxHostLabels || host === '') return 'other';
    hosts.add(host);
    return host;
  };
  // Label children kept per label set: prom-client sorts and hashes a label object on every
  // call. Label values are bounded (configured environments, fixed reasons), and counters are
  // never reset, so the children stay valid.
  const requestCounters = new Map<string, { inc(): void }>();
  const requestCounter = (environment: string, decision: string, reason: string): { inc(): void } =>
    remember(requestCounters, `${environment}\n${decision}\n${reason}`, () => metrics.requests.labels({ environment, decision, reason }));
  const byteCounters = new Map<string, { up: { inc(n: number): void }; down: { inc(n: number): void } }>();
  const bytes = (environment: string, kind: 'tunnel' | 'forward', up: number, down: number): void => {
    const pair = remember(byteCounters, `${environment}\n${kind}`, () => ({
      up: metrics.bytes.labels({ environment, kind, direction: 'up' }),
      down: metrics.bytes.labels({ environment, kind, direction: 'down' }),
    }));
    pair.up.inc(up);
    pair.down.inc(down);
  };
  return {
    decision(record: DecisionRecord) {
      const environment = label(record.environment);
      requestCounter(environment, record.decision, record.reason).inc();
      metrics.hostRequests?.inc({ environment, host: hostLabel(record.host), decision: record.decision });
      if (record.decisionSeconds !== undefined) metrics.decisionDuration.observe(record.decisionSeconds);
      if (record.reason === 'rate_limited') {
        metrics.rateLimited.inc({ environment, scope: String(record.rule ?? 'limit:session').replace(/^limit:/, '') });
        metrics.rateLimitedSessions.note(environment, record.session ?? 'anonymous');
      }
      writeDecision(record);
    },
    tunnelBytes(environment, up, down) {
      const env = label(environment);
      metrics.tunnelBytes.inc({ environment: env, direction: 'up' }, up);
      metrics.tunnelBytes.inc({ environment: env, direction: 'down' }, down);
      bytes(env, 'tunnel', up, down);
    },
    forwardBytes(environment, up, down) {
      bytes(label(environment), 'forward', up, down);
    },
    connectionOpened() {
      metrics.activeConnections.inc();
    },
    connectionClosed() {
      metrics.activeConnections.dec();
    },
    upstreamTiming(kind, seconds) {
      (kind === 'dns' ? metrics.dnsDuration : metrics.upstreamConnect).observe(seconds);
    },
    error(kind) {
      metrics.errors.inc({ type: kind });
    },
  };
}
