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

export class ConnectionRegistry {
  private readonly open = new Set<OpenConnection>();

  add(connection: OpenConnection): () => void {
    this.open.add(connection);
    return () => this.open.delete(connection);
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
