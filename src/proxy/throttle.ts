// Bandwidth shaping for tunnels. Every tunnel of a session draws from the same byte budget per
// direction, refilled continuously at the configured rate. A chunk already read is always
// delivered (never dropped, never held back); when it leaves the budget in debt the source
// socket is paused until the refill has paid the debt. A paused socket stops reading, so TCP
// flow control slows the sender itself instead of the proxy buffering for it.

import type { Duplex } from 'node:stream';
import { streamBytes } from './stream-bytes.js';

/** A token bucket of bytes that may go into debt by at most one chunk. */
export class ByteBudget {
  private tokens: number;
  private last = performance.now();

  constructor(private bytesPerSecond: number) {
    this.tokens = this.capacity();
  }

  /**
   * A tenth of a second of credit: enough that a steady stream is not woken for every chunk,
   * small enough that a download is held to the rate from its first second on.
   */
  private capacity(): number {
    return this.bytesPerSecond / 10;
  }

  set rate(bytesPerSecond: number) {
    this.refill();
    this.bytesPerSecond = bytesPerSecond;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }

  /** Charges `bytes`; returns the milliseconds to wait before reading more (0: go on). */
  take(bytes: number): number {
    this.refill();
    this.tokens -= bytes;
    return this.debtMs();
  }

  waitMs(): number {
    this.refill();
    return this.debtMs();
  }

  private debtMs(): number {
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.bytesPerSecond) * 1000);
  }
}

export interface Shaping {
  up: ByteBudget;
  down: ByteBudget;
  /** The tunnel is closed: forget the session's budgets once no tunnel uses them. */
  release(): void;
}

/** Budgets per session, shared by that session's open tunnels. */
export class SessionBandwidth {
  private readonly sessions = new Map<string, { up: ByteBudget; down: ByteBudget; users: number }>();

  acquire(sessionKey: string, bytesPerSecond: number): Shaping {
    let entry = this.sessions.get(sessionKey);
    if (!entry) {
      entry = { up: new ByteBudget(bytesPerSecond), down: new ByteBudget(bytesPerSecond), users: 0 };
      this.sessions.set(sessionKey, entry);
    } else {
      // A policy change applies to the budgets the session's open tunnels already share.
      entry.up.rate = bytesPerSecond;
      entry.down.rate = bytesPerSecond;
    }
    entry.users += 1;
    const held = entry;
    let released = false;
    return {
      up: held.up,
      down: held.down,
      release: () => {
        if (released) return;
        released = true;
        held.users -= 1;
        if (held.users === 0 && this.sessions.get(sessionKey) === held) this.sessions.delete(sessionKey);
      },
    };
  }

  get size(): number {
    return this.sessions.size;
  }
}

/**
 * When a relayed source may read again: once its destination has room and its byte budget
 * (if any) is out of debt. Shared by the two relays of a tunnel (pipeShaped below for uploads,
 * pooled-reads.ts for downloads); a subclass says how its source starts reading again.
 */
export abstract class ReadPermit {
  private full = false;
  private waiting: NodeJS.Timeout | undefined;

  constructor(protected readonly budget: ByteBudget | undefined) {}

  /** How the source reads again. */
  protected abstract readAgain(): void;

  /** After `bytes` were written (`accepted`: what write() answered): may the source read on? */
  protected wrote(accepted: boolean, bytes: number): boolean {
    if (!accepted) this.full = true;
    const debtMs = this.budget?.take(bytes) ?? 0;
    if (debtMs > 0) this.wait(debtMs);
    return !this.full && this.waiting === undefined;
  }

  /** The destination drained. */
  protected drained(): void {
    this.full = false;
    this.readAgainIfFree();
  }

  /** The source is gone: no timer left behind. */
  protected stopWaiting(): void {
    clearTimeout(this.waiting);
    this.waiting = undefined;
  }

  protected readAgainIfFree(): void {
    if (!this.full && this.waiting === undefined) this.readAgain();
  }

  private wait(ms: number): void {
    clearTimeout(this.waiting);
    this.waiting = setTimeout(() => {
      this.waiting = undefined;
      // Another tunnel of the session may have spent the refill meanwhile.
      const more = this.budget?.waitMs() ?? 0;
      if (more > 0) this.wait(more);
      else this.readAgainIfFree();
    }, ms);
  }
}

/**
 * `source.pipe(dest)` with a byte budget. Not built on pipe(): pipe resumes the source whenever
 * the destination drains, which would undo a pause taken for the budget. The source reads
 * again only when both the destination has room and the budget is out of debt. Ends `dest`
 * when `source` ends, like pipe() (a half-close passes through).
 */
class ShapedPipe extends ReadPermit {
  constructor(
    private readonly source: Duplex,
    dest: Duplex,
    budget: ByteBudget,
  ) {
    super(budget);
    source.on('data', (chunk: Buffer) => {
      if (!this.wrote(dest.write(chunk), chunk.length)) source.pause();
    });
    dest.on('drain', () => this.drained());
    source.on('end', () => dest.end());
    source.on('close', () => this.stopWaiting());
  }

  protected readAgain(): void {
    if (!this.source.destroyed) this.source.resume();
  }
}

export function pipeShaped(source: Duplex, dest: Duplex, budget: ByteBudget | undefined): void {
  if (budget) new ShapedPipe(source, dest, budget);
  else streamBytes(source, dest);
}
