// The Grafana dashboard and the Prometheus alerting rules in config/ may only use metrics and
// labels that the registry has: a renamed metric or label fails here, not on an operator's
// screen at 3 a.m.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics.js';
import { repoRoot } from '../helpers/gate.js';

/** PromQL functions, aggregations and keywords the files may use. */
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'topk', 'bottomk', 'quantile', 'stddev', 'rate', 'irate', 'increase', 'delta', 'deriv',
  'histogram_quantile', 'absent', 'absent_over_time', 'max_over_time', 'avg_over_time', 'clamp_min', 'clamp_max', 'vector', 'time',
  'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
]);
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];

const { registry } = createMetrics('test', { hostLabels: true });
const metricLabels = new Map<string, string[]>();
for (const metric of registry.getMetricsAsArray()) {
  const { name, type, labelNames } = metric as unknown as { name: string; type: string; labelNames: string[] };
  const labels = [...(labelNames ?? []), ...TARGET_LABELS];
  if (type === 'histogram') {
    // A histogram exists in PromQL only as its three series.
    metricLabels.set(`${name}_bucket`, [...labels, 'le']);
    metricLabels.set(`${name}_sum`, labels);
    metricLabels.set(`${name}_count`, labels);
  } else {
    metricLabels.set(name, labels);
  }
}

/** Problems of one expression: unknown metrics, unknown labels; and the labels it groups by. */
function checkExpr(expr: string): { problems: string[]; metrics: string[]; groupLabels: string[] } {
  const problems: string[] = [];
  const metrics = new Set<string>();
  const allowedLabels = new Set<string>();
  const useMetric = (name: string): void => {
    const labels = metricLabels.get(name);
    if (!labels) problems.push(`unknown metric ${name}`);
    else labels.forEach((l) => allowedLabels.add(l));
    metrics.add(name);
  };
  let text = expr.replace(/\$__\w+|\$\w+/g, '1m');
  // label_values(metric, label): Grafana's variable query.
  text = text.replace(/label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)/g, (_m, name: string, label: string) => {
    useMetric(name);
    if (!metricLabels.get(name)?.includes(label)) problems.push(`label ${label} not on ${name}`);
    return ' ';
  });
  const matchers: [string, string[]][] = [];
  text = text.replace(/([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g, (_m, name: string | undefined, body: string) => {
    const labels = [...body.matchAll(/(\w+)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)].map((m) => m[1] as string);
    if (!name) problems.push(`selector without a metric name: {${body}}`);
    else matchers.push([name, labels]);
    return ` ${name ?? ''} `;
  });
  const groupLabels: string[] = [];
  text = text.replace(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g, (_m, _k: string, list: string) => {
    groupLabels.push(...list.split(',').map((l) => l.trim()).filter(Boolean));
    return ' ';
  });
  text = text.replace(/\[[^\]]*\]/g, ' ').replace(/"(?:[^"\\]|\\.)*"/g, ' ').replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ' ');
  for (const word of text.match(/[a-zA-Z_:][\w:]*/g) ?? []) {
    if (!PROMQL_WORDS.has(word)) useMetric(word);
  }
  for (const [name, labels] of matchers) {
    for (const label of labels) if (!metricLabels.get(name)?.includes(label)) problems.push(`label ${label} not on ${name}`);
  }
  for (const label of groupLabels) if (!allowedLabels.has(label)) problems.push(`grouping by ${label}, which none of ${[...metrics].join(', ')} has`);
  return { problems, metrics: [...metrics], groupLabels };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string; legendFormat?: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(repoRoot, 'config/grafana-dashboard.json'), 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; definition?: string }[] };
};
const alerts = parse(readFileSync(join(repoRoot, 'config/prometheus-alerts.yaml'), 'utf8')) as {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
};

const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const targets = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));
const rules = alerts.groups.flatMap((g) => g.rules);

describe('the checker itself', () => {
  it.each([
    ['sum by (reason) (rate(egress_requests_total{decision="deny"}[5m]))', []],
    ['rate(egress_request_total[5m])', ['unknown metric egress_request_total']],
    ['sum(rate(egress_requests_total{host="x"}[5m]))', ['label host not on egress_requests_total']],
    ['sum by (session) (rate(egress_requests_total[5m]))', ['grouping by session, which none of egress_requests_total has']],
    ['histogram_quantile(0.99, sum by (le) (rate(egress_upstream_connect_seconds_bucket[5m])))', []],
    ['histogram_quantile(0.99, rate(egress_upstream_connect_seconds[5m]))', ['unknown metric egress_upstream_connect_seconds']],
  ])('%s → %j', (expr, problems) => {
    expect(checkExpr(expr).problems).toEqual(problems);
  });
});

describe('config/grafana-dashboard.json', () => {
  it('is a Grafana dashboard: uid, schema version, unique panel ids, a place on the grid, a Prometheus data source variable', () => {
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels) {
      expect(panel.gridPos, panel.title).toBeDefined();
      expect((panel.gridPos?.x ?? 0) + (panel.gridPos?.w ?? 0), panel.title).toBeLessThanOrEqual(24);
      if (panel.type !== 'row') expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.find((v) => v.type === 'datasource')?.query).toBe('prometheus');
  });

  it('every metric and label it references exists in the registry', () => {
    const exprs = [...targets.map((t) => ({ where: t.panel, expr: t.expr, legend: t.legendFormat })), ...dashboard.templating.list.filter((v) => v.definition).map((v) => ({ where: `variable ${v.name}`, expr: v.definition as string, legend: undefined }))];
    expect(exprs.length).toBeGreaterThan(10);
    for (const { where, expr, legend } of exprs) {
      const checked = checkExpr(expr);
      expect(checked.problems, `${where}: ${expr}`).toEqual([]);
      // A legend can only show labels the query keeps.
      for (const [, label] of (legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
        const kept = checked.groupLabels.length > 0 ? checked.groupLabels : checked.metrics.flatMap((m) => metricLabels.get(m) ?? []);
        expect(kept, `${where}: legend {{${label}}}`).toContain(label);
      }
    }
  });

  it('shows what operators asked for: denials by reason, rate-limited sessions, p99 connect time, reload failures, open connections, bytes', () => {
    const all = targets.map((t) => t.expr).join('\n');
    expect(all).toMatch(/sum by \(reason\) \(rate\(egress_requests_total\{decision="deny"/);
    expect(all).toMatch(/egress_rate_limited_sessions/);
    expect(all).toMatch(/histogram_quantile\(0\.99, sum by \(le\) \(rate\(egress_upstream_connect_seconds_bucket/);
    expect(all).toMatch(/egress_policy_reloads_total\{result="failure"\}/);
    expect(all).toMatch(/egress_active_connections/);
    expect(all).toMatch(/egress_bytes_total/);
  });
});

describe('config/prometheus-alerts.yaml', () => {
  it('is a rule file: named, unique alerts with a severity and a summary', () => {
    expect(alerts.groups.length).toBeGreaterThan(0);
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(['critical', 'warning', 'info']).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      if (rule.for !== undefined) expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
    }
  });

  it('every metric and label its rules reference exists in the registry', () => {
    for (const rule of rules) {
      const checked = checkExpr(rule.expr);
      expect(checked.problems, `${rule.alert}: ${rule.expr}`).toEqual([]);
      for (const [, label] of Object.values(rule.annotations).join('\n').matchAll(/\$labels\.(\w+)/g)) {
        expect(checked.groupLabels, `${rule.alert}: $labels.${label}`).toContain(label);
      }
    }
  });

  it('alerts on reload failures, rate-limited sessions, p99 connect time and open connections', () => {
    const all = rules.map((r) => r.expr).join('\n');
    for (const name of ['egress_policy_reloads_total', 'egress_rate_limited_sessions', 'egress_upstream_connect_seconds_bucket', 'egress_active_connections']) expect(all).toContain(name);
  });
});
