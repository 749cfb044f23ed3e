// The download half of a plain tunnel without a new 64 KiB buffer per read. A socket read the
// usual way gets a fresh 64 KiB ArrayBuffer for every read; at hundreds of MB/s that churn of
// external memory keeps V8's full collector marking back to back once the heap has the size of
// a real process (docs/decisions.md: half of a bulk tunnel's CPU). Here the upstream socket
// reads into one buffer shared by every tunnel (Node's `onread`), each read is copied into a
// chunk taken from a small free list, and the chunk goes back to the list once the client's
// socket has written it. Nothing is held per tunnel while it is idle.

import type { OnReadOpts, Socket } from 'node:net';
import { ReadPermit, type ByteBudget } from './throttle.js';

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

/** Each upstream socket's relay, once the client has been answered. */
const relays = new WeakMap<Socket, PooledDownstream>();
/** Reads made before that (a server that speaks first): chunk, length, chunk, length... */
const early = new WeakMap<Socket, (Buffer | number)[]>();

/** Node calls it as a method of the socket that read: one function for every tunnel. */
function readShared(this: Socket, bytes: number): boolean {
  const chunk = takeChunk();
  (shared as Buffer).copy(chunk, 0, 0, bytes);
  const relay = relays.get(this);
  if (relay) return relay.send(chunk, bytes);
  // Held until the client has been answered; reading waits for that.
  let held = early.get(this);
  if (!held) early.set(this, (held = []));
  held.push(chunk, bytes);
  return false;
}

function endClient(this: Socket): void {
  relays.get(this)?.dest.end();
}

/** The `onread` option for the upstream socket of a plain tunnel, shared by all of them. */
export const pooledReads: OnReadOpts = {
  buffer: () => (shared ??= Buffer.allocUnsafeSlow(CHUNK)),
  callback: readShared as OnReadOpts['callback'],
};

/**
 * Relays what an upstream socket opened with `pooledReads` reads to `dest`: reads stop while
 * `dest` is full (or the byte budget is in debt) and start again when it drains; bytes for a
 * destination that is gone are dropped; `dest` ends when the upstream does.
 */
export class PooledDownstream extends ReadPermit {
  /** Chunks handed to `dest`, in write order: each write's callback gives back the oldest. */
  private readonly inFlight: Buffer[] = [];

  private readonly written = (): void => {
    const chunk = this.inFlight.shift();
    if (chunk) giveChunk(chunk);
  };

  constructor(
    private readonly upstream: Socket,
    readonly dest: Socket,
    budget: ByteBudget | undefined,
  ) {
    super(budget);
    relays.set(upstream, this);
    dest.on('drain', () => this.drained());
    upstream.on('end', endClient);
    if (budget) upstream.once('close', () => this.stopWaiting());
    const held = early.get(upstream) ?? [];
    early.delete(upstream);
    for (let i = 0; i < held.length; i += 2) this.send(held[i] as Buffer, held[i + 1] as number);
    this.readAgainIfFree();
  }

  /** Writes the first `bytes` of a pooled chunk on; false stops the upstream's reads. */
  send(chunk: Buffer, bytes: number): boolean {
    const dest = this.dest;
    if (dest.destroyed) {
      giveChunk(chunk);
      return true;
    }
    this.inFlight.push(chunk);
    return this.wrote(dest.write(chunk.subarray(0, bytes), this.written), bytes);
  }

  protected readAgain(): void {
    if (!this.upstream.destroyed) this.upstream.resume();
  }
}
