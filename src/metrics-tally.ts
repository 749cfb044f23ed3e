// Labelled counters on the request path, counted in plain numbers and handed to prom-client
// when scraped. A prom-client label child only binds its label object: every increment still
// sorts, joins and validates the labels, and a forwarded request makes several. A scrape every
// few seconds costs one pass over the (bounded) label sets instead.

import { Counter, type CounterConfiguration } from 'prom-client';

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
