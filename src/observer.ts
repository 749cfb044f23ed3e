// One decision record feeds the log line and the metrics, so the two never disagree.

import { createDecisionWriter, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { TallyCell } from './metrics-tally.js';
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
  // Tally cells kept per label set (metrics-tally.ts). Label values are bounded (configured
  // environments, fixed reasons), and cells are never dropped, so a kept cell stays valid.
  const requestCells = new Map<string, TallyCell>();
  const requestCell = (environment: string, decision: string, reason: string): TallyCell =>
    remember(requestCells, `${environment}\n${decision}\n${reason}`, () => metrics.requestTally.cell({ environment, decision, reason }));
  const byteCells = new Map<string, { up: TallyCell; down: TallyCell }>();
  const bytes = (environment: string, kind: 'tunnel' | 'forward', up: number, down: number): void => {
    const pair = remember(byteCells, `${environment}\n${kind}`, () => ({
      up: metrics.bytesTally.cell({ environment, kind, direction: 'up' }),
      down: metrics.bytesTally.cell({ environment, kind, direction: 'down' }),
    }));
    pair.up.value += up;
    pair.down.value += down;
  };
  const tunnelCells = new Map<string, { up: TallyCell; down: TallyCell }>();
  return {
    decision(record: DecisionRecord) {
      const environment = label(record.environment);
      requestCell(environment, record.decision, record.reason).value += 1;
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
      const pair = remember(tunnelCells, env, () => ({ up: metrics.tunnelBytesTally.cell({ environment: env, direction: 'up' }), down: metrics.tunnelBytesTally.cell({ environment: env, direction: 'down' }) }));
      pair.up.value += up;
      pair.down.value += down;
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
