// `source.pipe(dest)` without pipe's machinery. pipe() hangs a dozen closures and two once
// wrappers on the two streams: about 1 KB per direction, made for every forwarded response and
// kept by every open tunnel for as long as it is open (10 000 idle tunnels: 20 MB).

import type { Readable, Writable } from 'node:stream';

/**
 * Reads stop while `dest` is full and start again when it drains; bytes for a destination that
 * is gone are dropped, as pipe() drops them once it has unpiped; `dest` ends when `source` does
 * (a half-close passes through). `onChunk` sees every chunk's size on its way.
 */
export function streamBytes(source: Readable, dest: Writable, onChunk?: (bytes: number) => void): void {
  source.on('data', (chunk: Buffer) => {
    onChunk?.(chunk.length);
    if (dest.destroyed) return;
    if (!dest.write(chunk)) source.pause();
  });
  dest.on('drain', () => source.resume());
  source.on('end', () => dest.end());
}
