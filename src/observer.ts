// One decision record feeds the log line and the metrics, so the two never disagree.

import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { DecisionRecord, ProxyObserver } from './proxy/context.js';

export function createObserver(log: Logger, metrics: Metrics, knownEnvironment: (id: string) => boolean): ProxyObserver {
  const label = (environment: string): string => (environment && knownEnvironment(environment) ? environment : 'unknown');
  return {
    decision(record: DecisionRecord) {
      const environment = label(record.environment);
      metrics.requests.inc({ environment, decision: record.decision, reason: record.reason });
      if (record.decisionSeconds !== undefined) metrics.decisionDuration.observe(record.decisionSeconds);
      if (record.reason === 'rate_limited') metrics.rateLimited.inc({ environment, scope: String(record.rule ?? 'limit:session').replace(/^limit:/, '') });
      log.info({ ...record, msg: undefined }, 'decision');
    },
    tunnelBytes(environment, up, down) {
      const env = label(environment);
      metrics.tunnelBytes.inc({ environment: env, direction: 'up' }, up);
      metrics.tunnelBytes.inc({ environment: env, direction: 'down' }, down);
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
