// HTTP/1.1 responses read with Node's own llhttp, the parser behind its HTTP client and server,
// in strict mode: what it refuses (a Content-Length next to Transfer-Encoding, two lengths,
// obs-fold, bare LF) ends the connection as a protocol error, so an upstream cannot frame a
// response two ways. The binding is reached through `_http_common`, the module Node's own
// HTTP code gets it from (docs/decisions.md).

import { createRequire } from 'node:module';

/** What the parser reports; `this` is the parser's owner, as passed to `createResponseParser`. */
export interface ResponseEvents {
  /** The first byte of a response. */
  onBegin(): void;
  /** The head. Return true when the response has no body whatever it says (the answer to HEAD). */
  onHead(status: number, statusText: string, headers: string[], keepAlive: boolean, upgrade: boolean): boolean;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

export interface ResponseParser {
  /** Parses bytes from the connection; an Error (with an `HPE_` code) when they are not HTTP. */
  execute(data: Buffer): number | (Error & { code?: string });
  /** The connection ended: completes a response framed by the close, or returns an Error. */
  finish(): undefined | (Error & { code?: string });
  close(): void;
}

interface NativeParser extends ResponseParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  [slot: number]: unknown;
  owner: ResponseEvents;
  /** Header lines handed over before the head was complete (a long head, split reads). */
  pending: string[];
}

interface ParserClass {
  new (): NativeParser;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}

const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass };

function onMessageBegin(this: NativeParser): void {
  this.owner.onBegin();
}

function onHeaders(this: NativeParser, headers: string[]): void {
  for (const line of headers) this.pending.push(line);
}

function onHeadersComplete(this: NativeParser, _major: number, _minor: number, headers: string[] | undefined, _method: unknown, _url: unknown, status: number, statusText: string, upgrade: boolean, keepAlive: boolean): number {
  let all = headers;
  if (all === undefined || this.pending.length > 0) {
    all = this.pending.concat(headers ?? []);
    this.pending = [];
  }
  // 1: read no body. The parser then takes the next bytes as the next response.
  return this.owner.onHead(status, statusText, all, keepAlive, upgrade) ? 1 : 0;
}

function onBody(this: NativeParser, chunk: Buffer): void {
  this.owner.onBody(chunk);
}

function onMessageComplete(this: NativeParser): void {
  this.owner.onComplete();
}

export function createResponseParser(owner: ResponseEvents, maxHeaderBytes: number): ResponseParser {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {}, maxHeaderBytes, HTTPParser.kLenientNone);
  parser.owner = owner;
  parser.pending = [];
  parser[HTTPParser.kOnMessageBegin] = onMessageBegin;
  parser[HTTPParser.kOnHeaders] = onHeaders;
  parser[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
  parser[HTTPParser.kOnBody] = onBody;
  parser[HTTPParser.kOnMessageComplete] = onMessageComplete;
  return parser;
}
