// Upstream connections for plain-HTTP forwarding, kept alive between requests. A connection is
// pooled under the checked address and port it was dialled to (never a name), so it only ever
// carries requests for that address. One request at a time on a connection: no pipelining.

import { UpstreamConnection, type UpstreamSettings } from './upstream-connection.js';

export class UpstreamPool {
  /** Idle connections by address and port, the most recently used last. */
  private readonly idle = new Map<string, UpstreamConnection[]>();
  private readonly open = new Set<UpstreamConnection>();
  private readonly forget = (connection: UpstreamConnection): void => {
    this.open.delete(connection);
    const list = this.idle.get(connection.key);
    if (list === undefined) return;
    const at = list.indexOf(connection);
    if (at >= 0) list.splice(at, 1);
    // An address with no idle connection left is forgotten.
    if (list.length === 0) this.idle.delete(connection.key);
  };

  /** Ends connections left idle too long, once a second while any are idle. */
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly settings: UpstreamSettings) {}

  /** An idle connection to `address`:`port`, or a new one. */
  take(address: string, port: number): UpstreamConnection {
    const key = `${address} ${port}`;
    const list = this.idle.get(key);
    const now = Date.now();
    while (list !== undefined && list.length > 0) {
      const connection = list.pop() as UpstreamConnection;
      // Ended but not yet told (its close event comes on a later turn), or kept past its time:
      // the server may be closing it.
      if (connection.socket.destroyed) continue;
      if (!connection.staleAt(now)) return connection;
      connection.abandon();
    }
    const connection = new UpstreamConnection(key, address, port, this.settings, this.forget);
    this.open.add(connection);
    return connection;
  }

  /** The exchange on `connection` is over: keep the connection for the next request, or end it. */
  release(connection: UpstreamConnection, reusable: boolean): void {
    if (!reusable || !connection.reusable || connection.idleMs <= 0 || connection.socket.destroyed) {
      connection.abandon();
      return;
    }
    connection.rest(Date.now());
    let list = this.idle.get(connection.key);
    if (list === undefined) this.idle.set(connection.key, (list = []));
    list.push(connection);
    this.sweeper ??= setInterval(() => this.sweep(), 1_000).unref();
  }

  private sweep(): void {
    const now = Date.now();
    let resting = 0;
    for (const list of this.idle.values()) {
      for (const connection of list) if (connection.staleAt(now)) connection.abandon();
      resting += list.length;
    }
    // Ended connections leave their lists when their close event comes; a list of only those
    // keeps the sweep one more second.
    if (resting === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const connection of this.open) connection.abandon();
  }
}
