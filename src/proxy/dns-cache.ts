// The system resolver's answers, remembered for `upstream.dnsCacheMs`. Without it every
// plain-HTTP request and every tunnel waited for its own getaddrinfo on libuv's four-thread
// pool, and a burst of requests to one host made as many identical lookups. Only the answer is
// cached: every address in it is still checked on every use (dial.ts), and the address checked
// is the address dialled, so a cache cannot reopen the private-address block.

export type Lookup = (host: string) => Promise<{ address: string }[]>;

interface Entry {
  addresses: { address: string }[];
  expiresAt: number;
}

interface Query {
  answer: Promise<{ address: string }[]>;
  startedAt: number;
}

/**
 * `lookup` behind a cache of successful answers, `ttlMs` long, at most `maxEntries` hosts (the
 * oldest go first). Concurrent lookups of one host share one query, for at most `shareMs`:
 * a query that hangs longer is not joined (the caller's own timeout answers it), a new one is
 * made. Failures are not cached: the next request asks again. `now` is the clock, for tests.
 */
export function cachedLookup(lookup: Lookup, options: { ttlMs: number; shareMs: number; maxEntries?: number; now?: () => number }): Lookup {
  const { ttlMs, shareMs, maxEntries = 10_000, now = () => performance.now() } = options;
  if (ttlMs <= 0) return lookup;
  const answers = new Map<string, Entry>();
  const pending = new Map<string, Query>();
  return (host) => {
    const cached = answers.get(host);
    if (cached && cached.expiresAt > now()) return Promise.resolve(cached.addresses);
    let query = pending.get(host);
    if (!query || now() - query.startedAt > shareMs) {
      const answer = lookup(host).then(
        (addresses) => {
          if (pending.get(host) === query) pending.delete(host);
          answers.delete(host);
          if (answers.size >= maxEntries) answers.delete(answers.keys().next().value as string);
          answers.set(host, { addresses, expiresAt: now() + ttlMs });
          return addresses;
        },
        (error: unknown) => {
          if (pending.get(host) === query) pending.delete(host);
          throw error;
        },
      );
      query = { answer, startedAt: now() };
      pending.set(host, query);
    }
    return query.answer;
  };
}
