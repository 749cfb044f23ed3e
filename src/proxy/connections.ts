// Open tunnels and kept-alive client connections, by session. When policy changes or a session
// is revoked, every entry is re-checked and the ones the new policy refuses are closed: a
// revocation means "now", not "when the client next reconnects".

import type { Target } from '../policy/types.js';

export interface OpenConnection {
  sessionKey: string;
  sessionId: string | undefined;
  environment: string;
  target: Target;
  close(): void;
}

type Latest = Omit<OpenConnection, 'close'>;

/** A client connection's entry, kept across its requests. */
interface HeldConnection extends OpenConnection {
  inFlight: number;
}

export class ConnectionRegistry {
  private readonly open = new Set<OpenConnection>();
  private readonly byClient = new WeakMap<{ destroy(): void }, HeldConnection>();

  add(connection: OpenConnection): () => void {
    this.open.add(connection);
    return () => this.open.delete(connection);
  }

  /**
   * A request in flight on a kept-alive client connection, registered under the request's
   * target until the returned release. One entry per connection, updated and added again for
   * each request, not a new one per request: a Set that takes and drops an entry per request
   * leaves each entry in the tables it outgrows, and an entry whose `close` closed over the
   * request kept the whole request alive until a full collection (about 5 KB promoted per
   * request, most of the garbage collector's cost on the forward path).
   */
  holdRequest(client: { destroy(): void }, latest: Latest): () => void {
    let entry = this.byClient.get(client);
    if (!entry) {
      entry = { ...latest, inFlight: 0, close: () => client.destroy() };
      this.byClient.set(client, entry);
    } else {
      entry.sessionKey = latest.sessionKey;
      entry.sessionId = latest.sessionId;
      entry.environment = latest.environment;
      entry.target = latest.target;
    }
    const held = entry;
    held.inFlight += 1;
    this.open.add(held);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held.inFlight -= 1;
      if (held.inFlight === 0) this.open.delete(held);
    };
  }

  get size(): number {
    return this.open.size;
  }

  /** Closes every connection for which `stillAllowed` says no; returns how many were closed. */
  sweep(stillAllowed: (connection: OpenConnection) => boolean): number {
    let closed = 0;
    for (const connection of [...this.open]) {
      if (!stillAllowed(connection)) {
        this.open.delete(connection);
        connection.close();
        closed += 1;
      }
    }
    return closed;
  }

  closeAll(): void {
    for (const connection of [...this.open]) connection.close();
    this.open.clear();
  }
}
