// Dependencies most processes never use, loaded at first use instead of at start: node-forge
// (TLS inspection and `ca init`) and ioredis (the Redis store) are 4 MB of heap together. A
// smaller heap makes every garbage collection cheaper, and tunnels collect often (every socket
// read allocates a buffer): with both loaded at start, a bare Node pipe ran its bulk benchmark
// at about 0.7 × its speed without them, and at about 0.9 × with the rest of our dependencies.

import { createRequire } from 'node:module';

const requireFrom = createRequire(import.meta.url);

/** A getter that loads the CommonJS module `name` on its first call. */
export function lazyRequire<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requireFrom(name) as T);
}
