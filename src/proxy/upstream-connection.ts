// One connection to an upstream for plain-HTTP forwarding: the socket, the parser that reads
// its responses, and the exchange (one request and its response) it is carrying, if any.
// Everything the socket does is turned into one of three outcomes for that exchange: a
// response, a failure, or nothing (no exchange: the connection is idle and simply ends).

import { connect, type Socket } from 'node:net';
import { createResponseParser, type ResponseEvents, type ResponseParser } from './response-parser.js';

export interface UpstreamSettings {
  connectTimeoutMs: number;
  /** Added to connectTimeoutMs: how long an upstream may stay silent once asked (head, body chunks). */
  idleTimeoutMs: number;
  maxHeaderBytes: number;
}

/** Why an exchange failed: the code an operator can act on (ECONNREFUSED, HPE_INVALID_CONSTANT, ...). */
export interface UpstreamFailure {
  timeout: boolean;
  detail: string;
}

/** What one request is told about its response. */
export interface Exchange {
  /** Returns true when the response has no body to read, whatever its head says (the answer to HEAD). */
  head(status: number, statusText: string, headers: string[]): boolean;
  body(chunk: Buffer): void;
  complete(): void;
  fail(failure: UpstreamFailure): void;
}

/**
 * How long an idle connection is kept: 4 s, or a second less than the server says it keeps one
 * (`Keep-Alive: timeout=N`), so a request is not written into a socket the server is closing.
 */
const KEEP_ALIVE_MS = 4_000;

function keepAliveMs(headers: string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
    const seconds = /(?:^|[\s,;])timeout=(\d+)/i.exec(headers[i + 1] as string)?.[1];
    if (seconds !== undefined) return Math.max(0, Math.min(KEEP_ALIVE_MS, Number(seconds) * 1000 - 1000));
  }
  return KEEP_ALIVE_MS;
}

export class UpstreamConnection implements ResponseEvents {
  readonly socket: Socket;
  private readonly parser: ResponseParser;
  private exchange: Exchange | null = null;
  private connected = false;
  /** The response being read is interim (1xx); the final one follows for the same exchange. */
  private interim = false;
  /** The last response allows another request on this connection. */
  reusable = false;
  /** How long the connection may wait idle for its next request. */
  idleMs = KEEP_ALIVE_MS;
  /** When it was last put to rest (Date.now()). */
  restingSince = 0;

  constructor(
    readonly key: string,
    address: string,
    port: number,
    settings: UpstreamSettings,
    onClosed: (connection: UpstreamConnection) => void,
  ) {
    this.parser = createResponseParser(this, settings.maxHeaderBytes);
    this.socket = connect(port, address);
    this.socket.setNoDelay(true);
    // The socket's inactivity timer, set once and not per request (each setTimeout is a new
    // timer object): connecting, then silence while a request is out. Writing a request re-arms
    // it, so every request gets the whole time; an idle connection is ended by the pool
    // (upstream-pool.ts), or by this timer if it comes first.
    this.socket.setTimeout(settings.connectTimeoutMs);
    this.socket.once('connect', () => {
      this.connected = true;
      this.socket.setTimeout(settings.connectTimeoutMs + settings.idleTimeoutMs);
    });
    this.socket.on('data', (chunk: Buffer) => {
      // Bytes while no request is out cannot be a response to anything: never read them as the next one's.
      if (this.exchange === null) return void this.socket.destroy();
      const parsed = this.parser.execute(chunk);
      if (typeof parsed !== 'number') this.failWith({ timeout: false, detail: parsed.code ?? parsed.message });
    });
    this.socket.on('end', () => {
      // A response framed by the end of the connection completes here.
      const ended = this.parser.finish();
      this.failWith({ timeout: false, detail: ended?.code ?? 'upstream closed the connection before the response ended' });
    });
    this.socket.on('timeout', () => {
      if (this.exchange === null) return void this.socket.destroy();
      this.failWith({ timeout: true, detail: this.connected ? 'upstream response timed out' : 'upstream connect timed out' });
    });
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.failWith({ timeout: false, detail: error.code ?? error.message }));
    this.socket.on('close', () => {
      this.failWith({ timeout: false, detail: 'upstream closed the connection before the response ended' });
      // The parser's native half goes once its callbacks have unwound.
      setImmediate(() => this.parser.close());
      onClosed(this);
    });
  }

  /** Carries `exchange` from now: the caller writes the request next. */
  begin(exchange: Exchange): void {
    this.exchange = exchange;
    this.interim = false;
    this.reusable = false;
  }

  /** Waits idle for the next exchange. */
  rest(now: number): void {
    this.exchange = null;
    this.restingSince = now;
  }

  /** Idle for longer than the connection may be kept. */
  staleAt(now: number): boolean {
    return now - this.restingSince >= this.idleMs;
  }

  /** The exchange is given up by its own side (the client left): end the connection without a word to it. */
  abandon(): void {
    this.exchange = null;
    this.socket.destroy();
  }

  private failWith(failure: UpstreamFailure): void {
    const exchange = this.exchange;
    if (exchange === null) return;
    this.exchange = null;
    this.socket.destroy();
    exchange.fail(failure);
  }

  onBegin(): void {
    // A response nobody asked for (bytes after the last one, read with it) ends the connection,
    // before a partial one can be completed by the bytes of the next request's answer.
    if (this.exchange === null) this.socket.destroy();
  }

  onHead(status: number, statusText: string, headers: string[], keepAlive: boolean, upgrade: boolean): boolean {
    const exchange = this.exchange;
    if (exchange === null) return true;
    // No forwarded request asks to switch protocols (Upgrade is hop-by-hop and dropped).
    if (upgrade) {
      this.failWith({ timeout: false, detail: `unrequested protocol switch (${status})` });
      return true;
    }
    if (status < 200) {
      // Interim responses (102, 103) are the upstream's business; the client gets the final one.
      this.interim = true;
      return true;
    }
    this.reusable = keepAlive;
    // Only a connection that may be kept needs to know for how long.
    if (keepAlive) this.idleMs = keepAliveMs(headers);
    return exchange.head(status, statusText, headers);
  }

  onBody(chunk: Buffer): void {
    this.exchange?.body(chunk);
  }

  onComplete(): void {
    if (this.interim) {
      this.interim = false;
      return;
    }
    const exchange = this.exchange;
    if (exchange === null) return;
    this.exchange = null;
    exchange.complete();
  }
}
