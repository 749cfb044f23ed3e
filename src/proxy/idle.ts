// Idle tunnels are found by a periodic sweep over their byte counters, not by a timer on each
// socket: Node re-arms a socket's timer on every read and every write, a cost every busy
// tunnel paid per chunk (it was most of the gap to a bare pipe in the bulk benchmark). A
// tunnel is cut between `timeoutMs` and `timeoutMs + timeoutMs / 4` after its last byte.

import type { Socket } from 'node:net';

interface Watched {
  sockets: readonly Socket[];
  onIdle: () => void;
  /** Bytes moved through all the sockets at the last sweep. */
  moved: number;
  /** When `moved` last changed. */
  activeAt: number;
}

const movedThrough = (sockets: readonly Socket[]): number => {
  let total = 0;
  for (const socket of sockets) total += socket.bytesRead + socket.bytesWritten;
  return total;
};

export class IdleSweeper {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  /** Calls `onIdle` once no byte has moved through any of `sockets` for the timeout; returns the way to stop watching. */
  watch(sockets: readonly Socket[], onIdle: () => void): () => void {
    const entry: Watched = { sockets, onIdle, moved: movedThrough(sockets), activeAt: performance.now() };
    this.watched.add(entry);
    this.timer ??= setInterval(() => this.sweep(), Math.max(25, Math.min(1_000, this.timeoutMs / 4))).unref();
    return () => {
      this.watched.delete(entry);
      if (this.watched.size === 0) this.stop();
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = performance.now();
    for (const entry of this.watched) {
      const moved = movedThrough(entry.sockets);
      if (moved !== entry.moved) {
        entry.moved = moved;
        entry.activeAt = now;
      } else if (now - entry.activeAt >= this.timeoutMs) {
        this.watched.delete(entry);
        entry.onIdle();
      }
    }
    if (this.watched.size === 0) this.stop();
  }
}
