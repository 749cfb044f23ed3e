// The process: config in, listeners out. Holds the one mutable thing, the compiled policy
// snapshot, and swaps it whole whenever the state changes; the request path only reads it.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from './config/types.js';
import { loadConfig, packageRoot } from './config/load.js';
import { applyLiveConfig } from './config/live.js';
import { Limits } from './limits.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createObserver } from './observer.js';
import { CidrSet } from './policy/addresses.js';
import { compileEnvironment, decideTarget, type CompiledDefaults, type CompiledEnvironment } from './policy/decide.js';
import type { Decision, EnvironmentPolicy, Target } from './policy/types.js';
import { ConnectionRegistry, type OpenConnection } from './proxy/connections.js';
import type { Identity, ProxyContext } from './proxy/context.js';
import { cachedLookup } from './proxy/dns-cache.js';
import { systemLookup } from './proxy/dial.js';
import type { Credentials } from './proxy/identity.js';
import { createProxyServer, type ProxyServer } from './proxy/server.js';
import { FileStateStore, type FileProblem } from './state/file-store.js';
import { RedisStateStore } from './state/redis-store.js';
import type { StateStore } from './state/store.js';
import { watchFolder } from './state/watch.js';
import { clusterBuckets, inClusterWorker, redisBuckets, redisConnectionCounter } from './limit-buckets.js';
import { readPolicyInputs, type FileErrors } from './state/policy-inputs.js';
import { tokenMatches } from './state/sessions.js';
import { Inspection, readUpstreamCas } from './inspect/inspection.js';
import { readGitCredential } from './github/credential.js';
import { GitGateway } from './github/gateway.js';
import { compileSecretFormats } from './policy/secrets.js';

export const version: string = (JSON.parse(readFileSync(resolve(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

export type ReloadResult = { ok: true } | { ok: false; problems: (FileErrors | FileProblem)[] };

export class Runtime {
  readonly connections = new ConnectionRegistry();
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly limits: Limits;
  readonly exempt: CidrSet;
  readonly store: StateStore;
  private defaults: CompiledDefaults;
  private compiled = new Map<string, CompiledEnvironment>();
  /** Compiled forms by source object: an unchanged environment is never compiled twice. */
  private compileCache = new WeakMap<EnvironmentPolicy, CompiledEnvironment>();
  private proxy: ProxyServer | undefined;
  private bound: { host: string; port: number } | undefined;
  private stopWatching: (() => void) | undefined;
  private adminClose: (() => Promise<void>) | undefined;
  readonly context: ProxyContext;

  readonly inspection: Inspection;

  private constructor(public config: Config, defaults: CompiledDefaults, configured: EnvironmentPolicy[], log: Logger | undefined, upstreamCas: string[]) {
    this.log = log ?? createLogger(config.logging.level);
    this.metrics = createMetrics(version, { hostLabels: config.metrics.hostLabels });
    this.exempt = new CidrSet([...config.upstream.allowPrivateNetworks]);
    this.defaults = defaults;
    if (config.store.backend === 'redis') {
      const redis = new RedisStateStore(config.store.redis, configured);
      this.store = redis;
      this.limits = new Limits(config.limits, redisBuckets(redis.redis), redisConnectionCounter(redis.redis, config.store.redis.keyPrefix));
    } else {
      this.store = new FileStateStore(config.stateDir, configured);
      this.limits = new Limits(config.limits, inClusterWorker() ? clusterBuckets() : undefined);
    }
    this.store.on('change', () => this.rebuild());
    this.store.on('prepare', (policy: EnvironmentPolicy) => {
      try {
        this.compiledFor(policy);
      } catch {
        // A validated policy that does not compile is a bug; rebuild() meets it again and fails the write.
      }
    });
    const secrets = compileSecretFormats(config.content.secretPatterns);
    // parseConfig compiled the same list; a failure here is a bug, not input.
    if (!secrets.ok) throw new Error(`content.secretPatterns: ${JSON.stringify(secrets.errors)}`);
    this.inspection = new Inspection(config.inspection.caDir, config.inspection.leafCacheSize, upstreamCas);
    const observer = createObserver(this.log, this.metrics, (id) => this.compiled.has(id), { maxHostLabels: config.metrics.maxHostLabels });
    this.context = {
      settings: config.proxy,
      dial: {
        resolve: config.upstream.resolve,
        exempt: this.exempt,
        dnsTimeoutMs: config.upstream.dnsTimeoutMs,
        connectTimeoutMs: config.proxy.connectTimeoutMs,
        system: cachedLookup(systemLookup, { ttlMs: config.upstream.dnsCacheMs, shareMs: config.upstream.dnsTimeoutMs }),
      },
      log: this.log,
      identify: (credentials) => this.identify(credentials),
      decide: (environment, target) => decideTarget(environment, target, this.exempt),
      limiter: this.limits,
      observer,
      connections: this.connections,
      secretFormats: secrets.formats,
      inspection: this.inspection,
    };
  }

  /** Reads policy inputs and state; refuses to start on any invalid file. */
  static async create(config: Config, log?: Logger): Promise<{ ok: true; runtime: Runtime } | { ok: false; problems: (FileErrors | FileProblem)[] }> {
    const inputs = readPolicyInputs(config);
    if (!inputs.ok) return { ok: false, problems: inputs.problems };
    const cas = readUpstreamCas(config.upstream.caFiles);
    if (!cas.ok) return { ok: false, problems: cas.problems };
    const git = readGitCredential(config.github);
    if (!git.ok) return { ok: false, problems: [{ file: config.file, errors: [{ path: git.path, message: git.message }] }] };
    const runtime = new Runtime(config, inputs.defaults, inputs.environments, log, cas.pems);
    if (git.credential) runtime.context.github = new GitGateway({ ...config.github, credential: git.credential }, (id) => runtime.store.getSession(id));
    let report;
    try {
      report = await runtime.store.load();
    } catch (error) {
      await runtime.store.close();
      return { ok: false, problems: [{ file: config.store.backend === 'redis' ? 'store.redis.url' : config.stateDir, errors: [{ path: '(store)', message: (error as Error).message }] }] };
    }
    if (report.problems.length > 0) return { ok: false, problems: report.problems };
    return { ok: true, runtime };
  }

  environment(id: string): CompiledEnvironment | undefined {
    return this.compiled.get(id);
  }

  identify(credentials: Credentials): Identity {
    if (credentials.kind === 'none') {
      const fallback = this.config.auth.required ? undefined : this.compiled.get(this.config.auth.defaultEnvironment);
      if (!fallback) return { ok: false, reason: 'auth_required', environment: '' };
      return { ok: true, environment: fallback, sessionId: undefined };
    }
    if (credentials.kind === 'malformed') return { ok: false, reason: 'auth_invalid', environment: '' };
    const session = this.store.getSession(credentials.sessionId);
    // Unknown session and wrong token look the same from outside: no oracle for valid ids.
    if (!session || !tokenMatches(session, credentials.token)) return { ok: false, reason: 'auth_invalid', environment: '' };
    const environment = this.compiled.get(session.environment);
    if (!environment) return { ok: false, reason: 'auth_invalid', environment: session.environment };
    return { ok: true, environment, sessionId: session.id };
  }

  /** The decision the proxy would make before dialling (the `check` harness and /v1/check). */
  check(environmentId: string, target: Target): Decision | undefined {
    const environment = this.compiled.get(environmentId);
    if (!environment) return undefined;
    return checkTarget(environment, target, this.exempt, this.config.upstream.resolve);
  }

  /** Re-reads config-derived inputs and every state file; a bad file keeps the last good policy. */
  async reload(config: Config = this.config): Promise<ReloadResult> {
    const inputs = readPolicyInputs(config);
    if (!inputs.ok) {
      this.metrics.policyReloads.inc({ result: 'failure' });
      for (const problem of inputs.problems) this.log.warn({ file: problem.file, errors: problem.errors }, 'policy file refused; last good policy kept');
      return { ok: false, problems: inputs.problems };
    }
    this.defaults = inputs.defaults;
    this.config = config;
    this.store.replaceConfigured(inputs.environments);
    this.compileCache = new WeakMap();
    let report;
    try {
      report = await this.store.load();
    } catch (error) {
      this.metrics.policyReloads.inc({ result: 'failure' });
      return { ok: false, problems: [{ file: '(store)', errors: [{ path: '(store)', message: (error as Error).message }] }] };
    }
    this.metrics.policyReloads.inc({ result: report.problems.length > 0 ? 'failure' : 'success' });
    for (const problem of report.problems) this.log.warn({ file: problem.file, errors: problem.errors }, 'policy file refused; last good policy kept');
    return report.problems.length > 0 ? { ok: false, problems: report.problems } : { ok: true };
  }

  /** POST /v1/reload: the config file read again and its policy inputs applied, then every state file. */
  async reloadFromFile(): Promise<ReloadResult & { restartNeeded: string[] }> {
    const loaded = loadConfig(this.config.file);
    if (!loaded.ok) {
      this.metrics.policyReloads.inc({ result: 'failure' });
      this.log.warn({ file: loaded.file, errors: loaded.errors }, 'config file refused; last good policy kept');
      return { ok: false, problems: [{ file: loaded.file, errors: loaded.errors }], restartNeeded: [] };
    }
    const { config, restartNeeded } = applyLiveConfig(this.config, loaded.config);
    if (restartNeeded.length > 0) this.log.warn({ keys: restartNeeded }, 'config keys changed that take effect at the next restart');
    return { ...(await this.reload(config)), restartNeeded };
  }

  /**
   * The compiled form of a policy, made once per policy object. The Redis store asks for it ahead
   * of time ('prepare') while a write waits on Redis, so the change that follows only swaps.
   */
  private compiledFor(policy: EnvironmentPolicy): CompiledEnvironment {
    let compiled = this.compileCache.get(policy);
    if (!compiled) {
      compiled = compileEnvironment(policy, this.defaults);
      this.compileCache.set(policy, compiled);
    }
    return compiled;
  }

  /** Compiles the store's view into a new snapshot, swaps it in, and closes what it refuses. */
  rebuild(): void {
    const next = new Map<string, CompiledEnvironment>();
    // A deleted environment's gauge goes with it.
    this.metrics.policyEntries.reset();
    for (const policy of this.store.listEnvironments(true)) {
      const compiled = this.compiledFor(policy);
      next.set(policy.id, compiled);
      this.metrics.policyEntries.set({ environment: policy.id }, compiled.entryCount);
    }
    this.compiled = next;
    this.connections.sweep((connection) => this.stillAllowed(connection));
  }

  private stillAllowed(connection: OpenConnection): boolean {
    let environmentId = connection.environment;
    if (connection.sessionId !== undefined) {
      const session = this.store.getSession(connection.sessionId);
      if (!session) return false;
      environmentId = session.environment;
    }
    const environment = this.compiled.get(environmentId);
    return environment !== undefined && decideTarget(environment, connection.target, this.exempt).allow;
  }

  async start(adminStart?: (runtime: Runtime) => Promise<{ address: string; close: () => Promise<void> }>): Promise<{ proxy: { host: string; port: number }; admin?: string }> {
    this.rebuild();
    this.proxy = createProxyServer(this.context);
    const proxy = await this.proxy.listen(this.config.proxy.listen.host, this.config.proxy.listen.port);
    this.bound = proxy;
    if (this.store instanceof FileStateStore) {
      const store = this.store;
      this.stopWatching = watchFolder(store.environmentsDir, (names) => {
        void (async () => {
          // Most events are this process's own API writes, already in force.
          if (names && !(await store.changedOnDisk(names).catch(() => true))) return;
          await this.reloadState();
        })();
      });
    }
    let admin: string | undefined;
    if (adminStart) {
      const started = await adminStart(this);
      admin = started.address;
      this.adminClose = started.close;
    }
    return { proxy, admin };
  }

  /** Re-reads the state store (hand edits); a refused file keeps its last good version. */
  async reloadState(): Promise<void> {
    try {
      const report = await this.store.load();
      this.metrics.policyReloads.inc({ result: report.problems.length > 0 ? 'failure' : 'success' });
      for (const problem of report.problems) this.log.warn({ file: problem.file, errors: problem.errors }, 'policy file refused; last good policy kept');
    } catch (error) {
      this.metrics.policyReloads.inc({ result: 'failure' });
      this.log.warn({ err: (error as Error).message }, 'state re-read failed; last good policy kept');
    }
  }

  /** host:port of the proxy listener as clients write it in a proxy URL. */
  proxyAddress(): string {
    const { host, port } = this.bound ?? this.config.proxy.listen;
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  /** The Trusted list as written in the allowlist file. */
  trustedEntries(): string[] {
    return this.defaults.source.trusted.map((pattern) => pattern.source);
  }

  async stop(graceMs = this.config.proxy.shutdownGraceMs): Promise<void> {
    this.stopWatching?.();
    await Promise.all([this.proxy?.close(graceMs), this.adminClose?.()]);
    await this.store.close();
    this.inspection.close();
    this.log.flush?.();
  }
}

/** decideTarget plus the address check for names pinned in upstream.resolve (no DNS here). */
export function checkTarget(environment: CompiledEnvironment, target: Target, exempt: CidrSet, pinned: Readonly<Record<string, string>>): Decision {
  const decision = decideTarget(environment, target, exempt);
  const address = pinned[target.host];
  if (!decision.allow || address === undefined) return decision;
  const byAddress = decideTarget(environment, { host: address, port: target.port }, exempt);
  return byAddress.reason === 'private_address' ? byAddress : decision;
}
