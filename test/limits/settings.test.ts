// The limit settings: what the policy and the config accept, and how a burst below one second's
// worth of requests is raised (docs/decisions.md: windows never shorter than a second).

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Limits } from '../../src/limits.js';
import { compileEnvironment } from '../../src/policy/decide.js';
import { validateEnvironment } from '../../src/policy/environment.js';
import type { RateLimitPolicy } from '../../src/policy/types.js';

describe('policy rateLimit.bandwidthBytesPerSecond', () => {
  it.each([
    [0, true, '0 lifts the config limit for this environment'],
    [1_048_576, true, '1 MiB/s'],
  ])('%j accepted=%s (%s)', (value, ok) => {
    const result = validateEnvironment({ id: 'web', access: 'full', rateLimit: { bandwidthBytesPerSecond: value } });
    expect(result.ok).toBe(ok);
    if (result.ok) expect(result.value.rateLimit).toEqual({ bandwidthBytesPerSecond: value });
  });

  it.each([[-1], [1.5], ['fast'], [null]])('%j is refused with its path', (value) => {
    const result = validateEnvironment({ id: 'web', access: 'full', rateLimit: { bandwidthBytesPerSecond: value } });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((e) => e.path)).toEqual(['rateLimit.bandwidthBytesPerSecond']);
  });
});

describe('config keys', () => {
  it.each([
    ['limits:\n  bandwidthBytesPerSecond: -5\n', 'limits.bandwidthBytesPerSecond'],
    ['metrics:\n  hostLabels: "yes"\n', 'metrics.hostLabels'],
    ['metrics:\n  maxHostLabels: 0\n', 'metrics.maxHostLabels'],
    ['metrics:\n  hostLabel: true\n', 'metrics.hostLabel'],
  ])('%j is refused at %s', (text, path) => {
    const loaded = parseConfig(text, 'egress.yaml', {});
    expect(loaded.ok).toBe(false);
    if (!loaded.ok) expect(loaded.errors.map((e) => e.path)).toContain(path);
  });

  it('defaults: bandwidth unlimited, host labels off', () => {
    const loaded = parseConfig('{}', 'egress.yaml', {});
    expect(loaded.ok && loaded.config.limits.bandwidthBytesPerSecond).toBe(0);
    expect(loaded.ok && loaded.config.metrics).toEqual({ hostLabels: false, maxHostLabels: 1000 });
  });
});

describe('effective burst', () => {
  const config = { requestsPerSecond: 50, burst: 100, maxConnections: 10, perHostRequestsPerSecond: 0, perHostBurst: 0, environmentRequestsPerSecond: 0, environmentBurst: 0, bandwidthBytesPerSecond: 0 };
  const env = (rateLimit: RateLimitPolicy | undefined) =>
    compileEnvironment({ id: 'web', name: 'web', access: 'full', allowedDomains: [], includeDefaults: false, deniedDomains: [], archived: false, rateLimit }, { trusted: [], alwaysAllow: [] });

  async function served(rateLimit: RateLimitPolicy | undefined, attempts: number): Promise<{ served: number; state: Record<string, unknown> | undefined }> {
    const limits = new Limits(config);
    const environment = env(rateLimit);
    let count = 0;
    let state: Record<string, unknown> | undefined;
    for (let i = 0; i < attempts; i++) {
      const verdict = await limits.take({ sessionKey: 's', environment: 'web', host: 'h' }, environment);
      if (verdict.ok) count += 1;
      else state = verdict.state;
    }
    return { served: count, state };
  }

  it.each<[RateLimitPolicy | undefined, number, string]>([
    [undefined, 100, 'the config: burst 100'],
    [{ burst: 7, requestsPerSecond: 5 }, 7, 'the policy overrides both'],
    [{ burst: 5 }, 50, 'a burst below a second of the config rate (50/s) is raised to 50'],
    [{ requestsPerSecond: 20, burst: 5 }, 20, 'and below a second of its own rate'],
    [{ requestsPerSecond: 2.5, burst: 1 }, 3, 'a fractional rate rounds up'],
  ])('%j serves %i of a burst (%s)', async (rateLimit, expected) => {
    const result = await served(rateLimit, expected + 5);
    expect(result.served).toBe(expected);
    expect(result.state).toMatchObject({ scope: 'session', burst: expected, remaining: 0 });
  });
});
