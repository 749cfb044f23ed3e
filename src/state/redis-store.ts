// Environments and sessions in Redis, for several replicas behind one load balancer.
//   <prefix>environments   hash id → policy JSON
//   <prefix>sessions       hash id → session JSON (token hash only)
//   <prefix>version        a counter every write increments
//   <prefix>changes        pub/sub channel: {"kind":"environment"|"session","id":"…","version":n}
// Every replica keeps the whole state in memory (the request path never waits on Redis),
// applies a change announced by any replica by re-reading that one key, and re-reads
// everything after a reconnect, since announcements sent while it was away are lost.
// A write is one Lua script setting the value, the counter and the announcement, so two
// replicas writing at once never interleave; while Redis is out of reach, writes fail with
// StoreUnavailableError and reads keep answering from the last state seen.
// The counter is the safety net under pub/sub: a replica knows the version its memory holds,
// re-reads everything when an announcement skips one, and compares it with Redis's every
// VERSION_CHECK_MS, so a lost announcement (a subscriber reconnecting in that instant, a stale
// re-read finishing last) costs at most that long, never the next change.

import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { lazyRequire } from '../lazy-require.js';

const ioredis = lazyRequire<typeof import('ioredis')>('ioredis');
import { validateEnvironment } from '../policy/environment.js';
import type { EnvironmentPolicy } from '../policy/types.js';
import { parseSessionFile, type Session } from './sessions.js';
import { StoreUnavailableError, type FileProblem, type LoadReport, type StateStore } from './store.js';

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
}

interface Change {
  kind: 'environment' | 'session';
  id: string;
  version?: number;
}

/** How often a replica compares the version its memory holds with Redis's: one GET. */
const VERSION_CHECK_MS = 2_000;

/** KEYS: the hash, the counter. ARGV: id, "1" to delete, value, channel, kind. */
const WRITE_SCRIPT = `
local removed = 0
if ARGV[2] == '1' then removed = redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], cjson.encode({ kind = ARGV[5], id = ARGV[1], version = version }))
return { removed, version }
`;

function connect(url: string): Redis {
  return new (ioredis().Redis)(url, {
    lazyConnect: true,
    // Fail fast while disconnected: a write must answer 503 now, not hang until Redis returns.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * attempt, 500),
  });
}

export class RedisStateStore extends EventEmitter implements StateStore {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private configured: Map<string, EnvironmentPolicy>;
  private environments = new Map<string, EnvironmentPolicy>();
  private sessions = new Map<string, Session>();
  private readonly keys: { environments: string; sessions: string; changes: string; version: string };
  private connectedOnce = false;
  /** The counter's value that memory reflects (every change up to it), or -1 before the first read. */
  private version = -1;
  private versionCheck: NodeJS.Timeout | undefined;

  constructor(options: RedisStoreOptions, configured: EnvironmentPolicy[] = []) {
    super();
    this.client = connect(options.url);
    this.subscriber = connect(options.url);
    this.configured = new Map(configured.map((p) => [p.id, p]));
    this.keys = { environments: `${options.keyPrefix}environments`, sessions: `${options.keyPrefix}sessions`, changes: `${options.keyPrefix}changes`, version: `${options.keyPrefix}version` };
    // ioredis reports connection errors as events; without listeners they would crash the process.
    this.client.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (_channel: string, message: string) => {
      void this.apply(message);
    });
    // Back after an outage: announcements made meanwhile are gone, so read everything again.
    // Either connection may come back first; the re-read needs the command connection, so it
    // is retried until it succeeds. The subscriber's re-read waits for its subscription to be
    // confirmed: one made before could miss a change announced between the read and the
    // subscription, and this replica would keep the old policy until the next change.
    this.subscriber.on('ready', () => {
      // The first connection is load()'s: it subscribes and reads everything itself.
      if (!this.connectedOnce) return;
      this.subscriber.subscribe(this.keys.changes).then(
        () => this.resync(),
        () => undefined, // Gone again: the next 'ready' tries again.
      );
    });
    this.client.on('ready', () => this.resync());
  }

  /** Memory holds every change up to `version`: taken only when it follows the one before. */
  private advanceTo(version: number | undefined): void {
    if (version === undefined) return;
    if (version === this.version + 1) this.version = version;
    else if (version > this.version) this.resync();
  }

  private async checkVersion(): Promise<void> {
    const current = await this.client.get(this.keys.version).catch(() => undefined);
    if (current !== undefined && Number(current ?? 0) !== this.version) this.resync();
  }

  private resyncTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private resync(): void {
    if (!this.connectedOnce || this.closed || this.resyncTimer) return;
    const attempt = (): void => {
      this.resyncTimer = undefined;
      if (this.closed) return;
      this.load().then(
        (report) => this.emit('resync', report),
        () => {
          this.resyncTimer = setTimeout(attempt, 250);
          this.resyncTimer.unref();
        },
      );
    };
    this.resyncTimer = setTimeout(attempt, 0);
    this.resyncTimer.unref();
  }

  /** The client, for the rate limiter's shared buckets. */
  get redis(): Redis {
    return this.client;
  }

  async load(): Promise<LoadReport> {
    if (!this.connectedOnce) {
      await Promise.all([this.client.connect(), this.subscriber.connect()]).catch((error: Error) => {
        throw new StoreUnavailableError(`redis: ${error.message}`);
      });
      await this.subscriber.subscribe(this.keys.changes);
      this.connectedOnce = true;
      this.versionCheck = setInterval(() => void this.checkVersion(), VERSION_CHECK_MS);
      this.versionCheck.unref();
    }
    // One transaction: the two hashes as of one version of the counter.
    const versionBefore = this.version;
    let results: [Error | null, unknown][] | null;
    try {
      results = await this.client.multi().get(this.keys.version).hgetall(this.keys.environments).hgetall(this.keys.sessions).exec();
    } catch (error) {
      throw new StoreUnavailableError(`redis: ${(error as Error).message}`);
    }
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw new StoreUnavailableError(`redis: ${failed?.[0]?.message ?? 'transaction aborted'}`);
    const version = Number(results[0]?.[1] ?? 0);
    const rawEnvironments = results[1]?.[1] as Record<string, string>;
    const rawSessions = results[2]?.[1] as Record<string, string>;
    // A change applied while this read was under way is newer than what it read: keep memory,
    // and read again. (A counter lower than memory's with nothing applied meanwhile means Redis
    // lost data or was reset: what it holds is the truth, and is taken.)
    if (this.version > versionBefore && version < this.version) {
      this.resync();
      return { environments: this.listEnvironments(true).length, sessions: this.sessions.size, problems: [] };
    }
    const problems: FileProblem[] = [];
    const environments = new Map<string, EnvironmentPolicy>();
    for (const [id, json] of Object.entries(rawEnvironments)) {
      const parsed = this.parseEnvironment(id, json);
      if (parsed.ok) environments.set(id, parsed.value);
      else {
        problems.push({ file: `redis:${this.keys.environments}/${id}`, errors: parsed.errors });
        const previous = this.environments.get(id);
        if (previous) environments.set(id, previous);
      }
    }
    const sessions = new Map<string, Session>();
    for (const [id, json] of Object.entries(rawSessions)) {
      const parsed = this.parseSession(json);
      if (typeof parsed === 'string') problems.push({ file: `redis:${this.keys.sessions}/${id}`, errors: [{ path: '(session)', message: parsed }] });
      else sessions.set(id, parsed);
    }
    this.environments = environments;
    this.sessions = sessions;
    this.version = version;
    this.emit('change');
    return { environments: this.listEnvironments(true).length, sessions: sessions.size, problems };
  }

  private parseEnvironment(id: string, json: string): ReturnType<typeof validateEnvironment> {
    try {
      return validateEnvironment(JSON.parse(json), id, this.environments.get(id));
    } catch (error) {
      return { ok: false, errors: [{ path: '(json)', message: (error as Error).message }] };
    }
  }

  private parseSession(json: string): Session | string {
    try {
      return parseSessionFile(JSON.parse(json));
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** Applies one announced change by re-reading its key: the value in Redis is the truth. */
  private async apply(message: string): Promise<void> {
    let change: Change;
    try {
      change = JSON.parse(message) as Change;
    } catch {
      return;
    }
    try {
      if (change.kind === 'environment') {
        const json = await this.client.hget(this.keys.environments, change.id);
        if (json === null) this.environments.delete(change.id);
        else {
          const parsed = this.parseEnvironment(change.id, json);
          if (!parsed.ok) return;
          this.environments.set(change.id, parsed.value);
        }
      } else if (change.kind === 'session') {
        const json = await this.client.hget(this.keys.sessions, change.id);
        if (json === null) this.sessions.delete(change.id);
        else {
          const parsed = this.parseSession(json);
          if (typeof parsed === 'string') return;
          this.sessions.set(change.id, parsed);
        }
      }
    } catch {
      return; // Redis went away mid-read: the resync on reconnect catches up.
    }
    this.advanceTo(change.version);
    this.emit('change');
  }

  /**
   * The value, the counter and an announcement carrying the counter's new value, as one script:
   * Redis runs it whole, so no other write comes between (a MULTI could not put INCR's answer
   * into the PUBLISH).
   */
  private async write(kind: Change['kind'], id: string, value: string | null): Promise<{ existed: boolean; version: number }> {
    const hash = kind === 'environment' ? this.keys.environments : this.keys.sessions;
    let answer: unknown;
    try {
      answer = await this.client.eval(WRITE_SCRIPT, 2, hash, this.keys.version, id, value === null ? '1' : '0', value ?? '', this.keys.changes, kind);
    } catch (error) {
      throw new StoreUnavailableError(`redis: ${(error as Error).message}`);
    }
    const [removed, version] = answer as [number, number];
    return { existed: value !== null || removed > 0, version };
  }

  replaceConfigured(policies: EnvironmentPolicy[]): void {
    this.configured = new Map(policies.map((p) => [p.id, p]));
  }

  listEnvironments(includeArchived: boolean): EnvironmentPolicy[] {
    const merged = new Map(this.configured);
    for (const [id, policy] of this.environments) merged.set(id, policy);
    return [...merged.values()].filter((p) => includeArchived || !p.archived).sort((a, b) => a.id.localeCompare(b.id));
  }

  getEnvironment(id: string): EnvironmentPolicy | undefined {
    return this.environments.get(id) ?? this.configured.get(id);
  }

  async putEnvironment(policy: EnvironmentPolicy, inForce?: () => void): Promise<void> {
    const writing = this.write('environment', policy.id, JSON.stringify(policy));
    // The write is on its way to Redis: the runtime compiles the policy meanwhile.
    this.emit('prepare', policy);
    const { version } = await writing;
    this.environments.set(policy.id, policy);
    this.advanceTo(version);
    this.emit('change');
    inForce?.();
  }

  async deleteEnvironment(id: string): Promise<boolean> {
    const { existed, version } = await this.write('environment', id, null);
    const known = this.environments.delete(id) || this.configured.delete(id) || existed;
    this.advanceTo(version);
    if (known) this.emit('change');
    return known;
  }

  getSession(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  listSessions(): Session[] {
    return [...this.sessions.values()];
  }

  async putSession(session: Session): Promise<void> {
    const { version } = await this.write('session', session.id, JSON.stringify(session));
    this.sessions.set(session.id, session);
    this.advanceTo(version);
    this.emit('change');
  }

  async deleteSession(id: string): Promise<boolean> {
    const { existed, version } = await this.write('session', id, null);
    const known = this.sessions.delete(id) || existed;
    this.advanceTo(version);
    if (known) this.emit('change');
    return known;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.resyncTimer);
    clearInterval(this.versionCheck);
    this.subscriber.disconnect();
    this.client.disconnect();
  }
}
