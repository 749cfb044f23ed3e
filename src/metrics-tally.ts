// Labelled counters on the request path, counted in plain numbers and handed to prom-client
// when scraped. A prom-client label child only binds its label object: every increment still
// sorts, joins and validates the labels, and a forwarded request makes several. A scrape every
// few seconds costs one pass over the (bounded) label sets instead.

import { Counter, type CounterConfiguration, type Metric, type Registry } from 'prom-client';

/** One label set's running total: add to `value`. */
export interface TallyCell {
  value: number;
}

export class Tally<L extends string> {
  private readonly cells = new Map<string, { labels: Record<L, string>; cell: TallyCell }>();

  constructor(private readonly labelNames: readonly L[]) {}

  /** The cell of a label set, made at first use: callers keep it rather than ask per event. */
  cell(labels: Record<L, string>): TallyCell {
    const key = this.labelNames.map((name) => labels[name]).join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, cell: { value: 0 } };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  /** The counter's values, replaced by the cells' totals (its collect hook, at each scrape). */
  report(counter: Counter<L>): void {
    counter.reset();
    for (const { labels, cell } of this.cells.values()) counter.inc(labels, cell.value);
  }
}

/** A prom-client counter whose values come from a tally: increment through the tally only. */
export function talliedCounter<L extends string>(config: CounterConfiguration<L> & { labelNames: readonly L[] }): { counter: Counter<L>; tally: Tally<L> } {
  const tally = new Tally<L>(config.labelNames);
  const counter = new Counter<L>({
    ...config,
    collect() {
      tally.report(this);
    },
  });
  return { counter, tally };
}

/**
 * An unlabelled histogram observed in plain numbers and read by the registry at scrape, in the
 * shape prom-client's own histograms report. prom-client's `observe` makes a closure, a label
 * object and a label hash on every call; two histograms are observed per forwarded request.
 */
export class TalliedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Per bucket, not cumulative; observations above the last bound are only in `count`. */
  private counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = bounds.map(() => 0);
    registry.registerMetric(this as unknown as Metric);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (this.counts[i] as number) += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }

  reset(): void {
    this.counts = this.bounds.map(() => 0);
    this.sum = 0;
    this.count = 0;
  }

  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    const values = this.bounds.map((le, i) => ({ labels: { le } as Record<string, string | number>, value: (cumulative += this.counts[i] as number), metricName: bucket }));
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: bucket });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
