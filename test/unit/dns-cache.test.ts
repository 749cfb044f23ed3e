// The resolver cache: answers reused for their time and then asked again, one query for a
// burst, failures and hung queries never remembered.
import { describe, expect, it } from 'vitest';
import { systemLookup } from '../../src/proxy/dial.js';
import { cachedLookup, type Lookup } from '../../src/proxy/dns-cache.js';

/** A resolver with fixed answers that counts its queries; `hang` never answers. */
function resolver(answers: Record<string, string | 'fail' | 'hang'>) {
  const asked: string[] = [];
  const lookup: Lookup = (host) => {
    asked.push(host);
    const answer = answers[host];
    if (answer === 'hang') return new Promise(() => {});
    if (answer === undefined || answer === 'fail') return Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
    return Promise.resolve([{ address: answer }]);
  };
  return { lookup, asked };
}

describe('cachedLookup', () => {
  it('reuses an answer until its time is up, then asks again', async () => {
    let clock = 0;
    const { lookup, asked } = resolver({ 'a.test': '192.0.2.1' });
    const cached = cachedLookup(lookup, { ttlMs: 1_000, shareMs: 500, now: () => clock });
    expect(await cached('a.test')).toEqual([{ address: '192.0.2.1' }]);
    clock = 999;
    expect(await cached('a.test')).toEqual([{ address: '192.0.2.1' }]);
    expect(asked).toEqual(['a.test']);
    clock = 1_001;
    await cached('a.test');
    expect(asked).toEqual(['a.test', 'a.test']);
  });

  it('makes one query for a burst of lookups of one host', async () => {
    const { lookup, asked } = resolver({ 'a.test': '192.0.2.1', 'b.test': '192.0.2.2' });
    const cached = cachedLookup(lookup, { ttlMs: 1_000, shareMs: 500 });
    const answers = await Promise.all([...Array(20).keys()].map((i) => cached(i % 2 ? 'a.test' : 'b.test')));
    expect(answers).toHaveLength(20);
    expect(asked.sort()).toEqual(['a.test', 'b.test']);
  });

  it('never remembers a failure', async () => {
    const { lookup, asked } = resolver({ 'gone.test': 'fail' });
    const cached = cachedLookup(lookup, { ttlMs: 60_000, shareMs: 500 });
    await expect(cached('gone.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(cached('gone.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(asked).toEqual(['gone.test', 'gone.test']);
  });

  it('does not join a query that has hung for longer than shareMs', async () => {
    let clock = 0;
    const { lookup, asked } = resolver({ 'slow.test': 'hang' });
    const cached = cachedLookup(lookup, { ttlMs: 60_000, shareMs: 500, now: () => clock });
    void cached('slow.test');
    void cached('slow.test');
    expect(asked).toHaveLength(1);
    clock = 501;
    void cached('slow.test');
    expect(asked).toHaveLength(2);
  });

  it('holds at most maxEntries hosts, dropping the oldest', async () => {
    const { lookup, asked } = resolver({ 'a.test': '192.0.2.1', 'b.test': '192.0.2.2', 'c.test': '192.0.2.3' });
    const cached = cachedLookup(lookup, { ttlMs: 60_000, shareMs: 500, maxEntries: 2 });
    for (const host of ['a.test', 'b.test', 'c.test', 'c.test', 'b.test', 'a.test']) await cached(host);
    expect(asked).toEqual(['a.test', 'b.test', 'c.test', 'a.test']);
  });

  it('with a time of 0, is the resolver itself', () => {
    const { lookup } = resolver({});
    expect(cachedLookup(lookup, { ttlMs: 0, shareMs: 500 })).toBe(lookup);
  });

  it('answers from the system resolver (localhost, from the hosts file)', async () => {
    const cached = cachedLookup(systemLookup, { ttlMs: 1_000, shareMs: 5_000 });
    const answer = await cached('localhost');
    expect(answer.map((a) => a.address).some((a) => a === '127.0.0.1' || a === '::1')).toBe(true);
    expect(await cached('localhost')).toBe(answer);
  });
});
