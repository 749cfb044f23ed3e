// What the runtime and the admin API need from the place policies and sessions are kept.
// Two backends: `file` (stateDir, the default) and `redis` (several replicas sharing state).
// Reads are answered from the process's own memory, so the request path never waits on
// storage; writes resolve once durable and once this process's view has changed (the file store
// changes its view of a policy first, and puts it back if the write fails). Events: 'change' once
// the view has changed; 'prepare' (policy) while a policy's write to Redis is under way, so the
// runtime can compile it before the change.

import type { EventEmitter } from 'node:events';
import type { EnvironmentPolicy } from '../policy/types.js';
import type { Session } from './sessions.js';

export interface FileProblem {
  file: string;
  errors: { path: string; message: string }[];
}

export interface LoadReport {
  environments: number;
  sessions: number;
  problems: FileProblem[];
}

/** A write could not be made durable because the backend is out of reach (the API says 503). */
export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export interface StateStore extends EventEmitter {
  load(): Promise<LoadReport>;
  /** The environments declared in the config file (the layer stored ones override); in force after the next load(). */
  replaceConfigured(policies: EnvironmentPolicy[]): void;
  listEnvironments(includeArchived: boolean): EnvironmentPolicy[];
  getEnvironment(id: string): EnvironmentPolicy | undefined;
  /** `inForce` is called once new connections are decided by `policy`: before the write is durable (file) or after (Redis). */
  putEnvironment(policy: EnvironmentPolicy, inForce?: () => void): Promise<void>;
  deleteEnvironment(id: string): Promise<boolean>;
  getSession(id: string): Session | undefined;
  listSessions(): Session[];
  putSession(session: Session): Promise<void>;
  deleteSession(id: string): Promise<boolean>;
  close(): Promise<void>;
}
