// The soak in CI: bench/soak.js for 60 seconds (the full run is 10 minutes, by hand), in its own
// process so that its file descriptors and memory are its own. Mixed allowed, refused and
// rate-limited traffic with a policy change every second; the resources stay flat, nothing
// unexpected happens, and every refusal carries its reason. Needs `npm run build` (npm test does).

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/gate.js';
import { cleanEnv, run } from '../helpers/run.js';

interface SoakFigures {
  requests: number;
  served: number;
  refusals: Record<string, number>;
  unexpected: string[];
  policyChanges: number;
  rssMiB: { start: number; end: number; max: number };
  fds: { start: number; end: number; max: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  registeredAtEnd: number;
}

describe('soak (60 s)', () => {
  it('stays flat under mixed traffic and a policy change every second', async () => {
    const result = await run(process.execPath, [join(repoRoot, 'bench/soak.js'), '--duration', '60', '--concurrency', '12', '--json'], { env: cleanEnv(), timeoutMs: 150_000 });
    // The human-readable figures, for the CI log.
    process.stderr.write(result.stderr);
    expect(result.code, result.stderr).toBe(0);
    const figures = JSON.parse(result.stdout.trim().split('\n').at(-1) as string) as SoakFigures;

    expect(figures.unexpected).toEqual([]);
    expect(figures.served).toBeGreaterThan(1_000);
    for (const reason of ['host_not_allowed', 'private_address', 'rate_limited']) expect(figures.refusals[reason] ?? 0, reason).toBeGreaterThan(0);
    // Every refusal carried an X-Deny-Reason: none was counted under "none".
    expect(Object.keys(figures.refusals)).not.toContain('none');
    expect(figures.policyChanges).toBeGreaterThanOrEqual(30);
    expect(figures.registeredAtEnd).toBe(0);
    // Flat within generous bounds: two noisy shared cores, and a heap that settles after warm-up.
    expect(figures.fds.end).toBeLessThanOrEqual(figures.fds.start + 20);
    expect(figures.rssMiB.end).toBeLessThan(figures.rssMiB.start + 150);
    expect(figures.eventLoopDelayMs.p99).toBeLessThan(1_000);
  }, 180_000);
});
