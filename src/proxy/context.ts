// What the socket layer needs from the rest of the process, and nothing more. The runtime
// (src/runtime.ts) provides it; tests of the proxy build the real one, not a stand-in.

import type { GitGateway } from '../github/gateway.js';
import type { Inspection } from '../inspect/inspection.js';
import type { Logger } from '../log.js';
import type { CompiledEnvironment } from '../policy/decide.js';
import type { SecretFormat } from '../policy/secrets.js';
import type { Decision, ReasonCode, Target } from '../policy/types.js';
import type { ConnectionRegistry } from './connections.js';
import type { DialOptions } from './dial.js';
import type { Credentials } from './identity.js';
import type { Shaping } from './throttle.js';

export type Identity =
  | { ok: true; environment: CompiledEnvironment; sessionId: string | undefined }
  | { ok: false; reason: Extract<ReasonCode, 'auth_required' | 'auth_invalid'>; environment: string };

export type LimitVerdict = { ok: true } | { ok: false; retryAfterSeconds: number; scope: string; state: Record<string, unknown> };

export interface Limiter {
  /** One request or one new tunnel. */
  take(identity: { sessionKey: string; environment: string; host: string }, environment: CompiledEnvironment): Promise<LimitVerdict>;
  /** A slot among the session's open connections, or the verdict that there is none. */
  open(sessionKey: string, environment: CompiledEnvironment): Promise<LimitVerdict & { release?: () => void }>;
  /** The byte budgets a session's tunnels share, or undefined when bandwidth is unlimited. */
  bandwidth(sessionKey: string, environment: CompiledEnvironment): Shaping | undefined;
}

export interface DecisionRecord {
  environment: string;
  session: string | undefined;
  method: string;
  host: string;
  port: number;
  decision: 'allow' | 'deny';
  reason: ReasonCode;
  rule?: string;
  bytesUp?: number;
  bytesDown?: number;
  durationMs?: number;
  decisionSeconds?: number;
  detail?: string;
  limiter?: Record<string, unknown>;
  /** A request inside an inspected tunnel, or the inspected tunnel itself. */
  inspected?: boolean;
}

export interface ProxyObserver {
  decision(record: DecisionRecord): void;
  tunnelBytes(environment: string, up: number, down: number): void;
  /** Body bytes of one plain-HTTP request and its response. */
  forwardBytes(environment: string, up: number, down: number): void;
  connectionOpened(): void;
  connectionClosed(): void;
  upstreamTiming(kind: 'dns' | 'connect', seconds: number): void;
  error(kind: string): void;
}

export interface ProxySettings {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  maxHeaderBytes: number;
  maxConnections: number;
  connectTimeoutMs: number;
}

export interface ProxyContext {
  settings: ProxySettings;
  dial: DialOptions;
  log: Logger;
  identify(credentials: Credentials): Identity;
  decide(environment: CompiledEnvironment, target: Target): Decision;
  limiter: Limiter;
  observer: ProxyObserver;
  connections: ConnectionRegistry;
  /** Credential formats: the built-in ones and `content.secretPatterns`. */
  secretFormats: readonly SecretFormat[];
  inspection: Inspection;
  /** The GitHub proxy, when the operator configured a real git credential. */
  github?: GitGateway;
}
