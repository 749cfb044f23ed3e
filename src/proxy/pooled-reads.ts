// The download half of a plain tunnel without a new 64 KiB buffer per read. A socket read the
// usual way gets a fresh 64 KiB ArrayBuffer for every read; at hundreds of MB/s that churn of
// external memory keeps V8's full collector marking back to back once the heap has the size of
// a real process (docs/performance.md: half of a bulk tunnel's CPU). Here the upstream socket
// reads into one buffer shared by every tunnel (Node's `onread`), each read is copied into a
// chunk taken from a small free list, and the chunk goes back to the list once the client's
// socket has written it. Nothing is held per tunnel while it is idle.

import type { Socket } from 'node:net';
import type { ByteBudget } from './throttle.js';

const CHUNK = 64 * 1024;
/** Spare chunks kept for reuse; more than this in flight at once are left to the collector. */
const MAX_SPARE = 64;

let shared: Buffer | undefined;
const spare: Buffer[] = [];

function takeChunk(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function giveChunk(chunk: Buffer): void {
  if (spare.length < MAX_SPARE) spare.push(chunk);
}

/**
 * Relays what the upstream socket reads to `dest`, once `attach` names it: reads stop while
 * `dest` is full (or the byte budget is in debt) and start again when it drains; bytes for a
 * destination that is gone are dropped; `dest` ends when the upstream does.
 */
export class PooledDownstream {
  private dest: Socket | undefined;
  private budget: ByteBudget | undefined;
  private upstream: Socket | undefined;
  /** Chunks handed to `dest`, in write order: each write's callback gives back the oldest. */
  private readonly inFlight: Buffer[] = [];
  /** Reads made before `attach` (a server that speaks first): chunk, length, chunk, length... */
  private early: (Buffer | number)[] | undefined;
  private waiting: NodeJS.Timeout | undefined;
  private full = false;

  /** The `onread` option for the upstream socket's `connect`. */
  readonly onread = {
    buffer: (): Buffer => (shared ??= Buffer.allocUnsafeSlow(CHUNK)),
    callback: (bytes: number): boolean => this.read(bytes),
  };

  private readonly written = (): void => {
    const chunk = this.inFlight.shift();
    if (chunk) giveChunk(chunk);
  };

  private readonly drained = (): void => {
    this.full = false;
    this.resumeIfFree();
  };

  attach(upstream: Socket, dest: Socket, budget: ByteBudget | undefined): void {
    this.upstream = upstream;
    this.dest = dest;
    this.budget = budget;
    dest.on('drain', this.drained);
    upstream.once('end', () => dest.end());
    upstream.once('close', () => clearTimeout(this.waiting));
    const early = this.early ?? [];
    this.early = undefined;
    for (let i = 0; i < early.length; i += 2) this.send(early[i] as Buffer, early[i + 1] as number);
    this.resumeIfFree();
  }

  private read(bytes: number): boolean {
    const chunk = takeChunk();
    (shared as Buffer).copy(chunk, 0, 0, bytes);
    if (!this.dest) {
      // Held until the client has been answered; reading waits for that.
      (this.early ??= []).push(chunk, bytes);
      return false;
    }
    return this.send(chunk, bytes);
  }

  /** Writes the first `bytes` of a pooled chunk on; false stops the upstream's reads. */
  private send(chunk: Buffer, bytes: number): boolean {
    const dest = this.dest as Socket;
    if (dest.destroyed) {
      giveChunk(chunk);
      return true;
    }
    this.inFlight.push(chunk);
    if (!dest.write(chunk.subarray(0, bytes), this.written)) this.full = true;
    const debtMs = this.budget?.take(bytes) ?? 0;
    if (debtMs > 0) this.wait(debtMs);
    return !this.full && this.waiting === undefined;
  }

  private wait(ms: number): void {
    clearTimeout(this.waiting);
    this.waiting = setTimeout(() => {
      this.waiting = undefined;
      // Another tunnel of the session may have spent the refill meanwhile.
      const more = this.budget?.waitMs() ?? 0;
      if (more > 0) this.wait(more);
      else this.resumeIfFree();
    }, ms);
  }

  private resumeIfFree(): void {
    const upstream = this.upstream;
    if (!this.full && this.waiting === undefined && upstream && !upstream.destroyed) upstream.resume();
  }
}
