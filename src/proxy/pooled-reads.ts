// The download half of a plain tunnel without a new 64 KiB buffer per read. A socket read the
// usual way gets a fresh 64 KiB ArrayBuffer for every read; at hundreds of MB/s that churn of
// external memory keeps V8's full collector marking back to back once the heap has the size of
// a real process (docs/decisions.md: half of a bulk tunnel's CPU). Here the upstream socket
// reads through Node's `onread` into a buffer this module chooses before every read: one buffer
// shared by every tunnel, each read copied out of it into a chunk taken from a small free list;
// or, right after a read that filled its buffer (a download under way: more is waiting), a chunk
// of its own, which the read fills in place with no copy. A chunk goes back to the list once the
// client's socket has written it. A tunnel that has not downloaded holds nothing, and at most
// MAX_LENT chunks wait in sockets for a read at any time.

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

/**
 * Chunks lent to sockets as their next read's buffer. A socket whose download pauses (a slow
 * client) keeps its chunk until it reads again; the cap bounds what all of them hold.
 */
const MAX_LENT = 64;
const lent = new WeakMap<Socket, Buffer>();
/** Sockets whose close gives back a lent chunk: the listener is added once per socket. */
const watched = new WeakSet<Socket>();
let lentCount = 0;
/** The buffer for the read that follows the one being handled: Node asks right after the callback. */
let next: Buffer | undefined;

function nextReadBuffer(): Buffer {
  const buffer = next ?? (shared ??= Buffer.allocUnsafeSlow(CHUNK));
  next = undefined;
  return buffer;
}

/** A socket closed with a lent chunk: no read will fill it now. */
function takeBackLent(this: Socket): void {
  const chunk = lent.get(this);
  if (!chunk) return;
  lent.delete(this);
  lentCount -= 1;
  giveChunk(chunk);
}

/** Each upstream socket's relay, once the client has been answered. */
const relays = new WeakMap<Socket, PooledDownstream>();
/** Reads made before that (a server that speaks first): chunk, length, chunk, length... */
const early = new WeakMap<Socket, (Buffer | number)[]>();

/** Node calls it as a method of the socket that read, with the buffer it read into. */
function readShared(this: Socket, bytes: number, buffer: Buffer): boolean {
  let chunk: Buffer;
  if (buffer === shared) {
    chunk = takeChunk();
    shared.copy(chunk, 0, 0, bytes);
  } else {
    chunk = buffer;
    lent.delete(this);
    lentCount -= 1;
  }
  if (bytes === CHUNK && lentCount < MAX_LENT) {
    next = takeChunk();
    if (!watched.has(this)) {
      watched.add(this);
      this.once('close', takeBackLent);
    }
    lent.set(this, next);
    lentCount += 1;
  }
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
  buffer: nextReadBuffer,
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
