// Idle tunnels are found by a periodic sweep over their byte counters, not by a timer on each
// socket: Node re-arms a socket's timer on every read and every write, a cost every busy
// tunnel paid per chunk (it was most of the gap to a bare pipe in the bulk benchmark). A
// tunnel is cut between `timeoutMs` and `timeoutMs + timeoutMs / 4` after its last byte.

import type { Socket } from 'node:net';

/** One watched tunnel: its two sockets, and what to do once it is idle. */
export interface Watched {
  a: Socket;
  b: Socket;
  onIdle: () => void;
  /** Bytes moved through both sockets at the last sweep. */
  moved: number;
  /** When `moved` last changed. */
  activeAt: number;
}

const movedThrough = (entry: { a: Socket; b: Socket }): number => entry.a.bytesRead + entry.a.bytesWritten + entry.b.bytesRead + entry.b.bytesWritten;

export class IdleSweeper {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  /**
   * Calls `onIdle` once no byte has moved through either socket for the timeout. The entry is
   * what `unwatch` takes: no closure per tunnel, since idle tunnels are counted in thousands.
   */
  watch(a: Socket, b: Socket, onIdle: () => void): Watched {
    const entry: Watched = { a, b, onIdle, moved: 0, activeAt: performance.now() };
    entry.moved = movedThrough(entry);
    this.watched.add(entry);
    this.timer ??= setInterval(() => this.sweep(), Math.max(25, Math.min(1_000, this.timeoutMs / 4))).unref();
    return entry;
  }

  unwatch(entry: Watched): void {
    this.watched.delete(entry);
    if (this.watched.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = performance.now();
    for (const entry of this.watched) {
      const moved = movedThrough(entry);
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
