// TalliedHistogram (src/metrics-tally.ts) stands in for prom-client's Histogram on the request
// path: a scrape must not be able to tell them apart. Same observations into both, same text.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { TalliedHistogram } from '../../src/metrics-tally.js';

const bounds = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];

async function both(values: number[], reset = false): Promise<[string, string]> {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'egress_test_seconds', help: 'A test histogram', buckets: bounds, registers: [theirs] });
  const tallied = new TalliedHistogram('egress_test_seconds', 'A test histogram', bounds, ours);
  for (const value of values) {
    reference.observe(value);
    tallied.observe(value);
  }
  if (reset) {
    theirs.resetMetrics();
    ours.resetMetrics();
    reference.observe(0.003);
    tallied.observe(0.003);
  }
  return [await ours.metrics(), await theirs.metrics()];
}

describe('TalliedHistogram', () => {
  it('scrapes exactly as prom-client’s Histogram for the same observations, bounds and +Inf included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom(...bounds, 0, 2, 1e-9), fc.double({ min: 0, max: 3, noNaN: true })), { minLength: 1, maxLength: 200 }), async (values) => {
        const [ours, theirs] = await both(values);
        expect(ours).toBe(theirs);
      }),
      { numRuns: 100 },
    );
  });

  it('starts over on a registry reset, as prom-client’s does', async () => {
    const [ours, theirs] = await both([0.0002, 0.7, 4], true);
    expect(ours).toBe(theirs);
    expect(ours).toContain('egress_test_seconds_count 1');
  });
});
