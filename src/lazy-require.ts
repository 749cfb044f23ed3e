// Dependencies most processes never use, loaded at first use instead of at start: node-forge
// (TLS inspection and `ca init`) and ioredis (the Redis store) are 4 MB of heap together. A
// smaller heap makes every garbage collection cheaper, and tunnels collect often (every socket
// read allocates a buffer). Measured on the bare pass-through proxy in bench/: with all of our
// dependencies imported it moved bulk data at about 0.7 × its own speed, and with all but
// these two at about 0.9 ×.

import { createRequire } from 'node:module';

const requireFrom = createRequire(import.meta.url);

/** A getter that loads the CommonJS module `name` on its first call. */
export function lazyRequire<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requireFrom(name) as T);
}
