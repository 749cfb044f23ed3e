// Reads the YAML config file into a validated, defaulted, frozen Config.
// Knows nothing of sockets: the proxy and the admin API get plain values.

import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { canonicalIp, validateCidr } from '../policy/addresses.js';
import { compileSecretFormats } from '../policy/secrets.js';
import { applySchema, type ConfigError, type Schema } from './schema.js';
import type { Config } from './types.js';

/** The package root: where the embedded config and allowlists live, whatever the cwd. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const defaultConfigFile = 'config/egress.yaml';

const MiB = 1024 * 1024;

const schema: Schema = {
  proxy: {
    listen: { kind: 'listen', default: '127.0.0.1:3128' },
    connectTimeoutMs: { kind: 'integer', default: 10_000, min: 100, max: 600_000 },
    idleTimeoutMs: { kind: 'integer', default: 300_000, min: 1_000, max: 86_400_000 },
    headerTimeoutMs: { kind: 'integer', default: 10_000, min: 100, max: 600_000 },
    maxHeaderBytes: { kind: 'integer', default: 16_384, min: 1_024, max: MiB },
    maxConnections: { kind: 'integer', default: 10_000, min: 1, max: 1_000_000 },
    shutdownGraceMs: { kind: 'integer', default: 10_000, min: 0, max: 600_000 },
  },
  admin: {
    listen: { kind: 'listen', default: '127.0.0.1:3129' },
    token: { kind: 'string', default: '', allowEmpty: true },
  },
  stateDir: { kind: 'string', default: './state' },
  store: {
    backend: { kind: 'enum', default: 'file', values: ['file', 'redis'] },
    redis: {
      url: { kind: 'string', default: 'redis://127.0.0.1:6379' },
      keyPrefix: { kind: 'string', default: 'egress:' },
    },
  },
  workers: { kind: 'integer', default: 1, min: 1, max: 64 },
  defaults: {
    allowlist: { kind: 'string', default: 'allowlists/default.yaml' },
    alwaysAllow: { kind: 'stringArray', default: ['api.anthropic.com'] },
  },
  auth: {
    required: { kind: 'boolean', default: false },
    defaultEnvironment: { kind: 'string', default: 'default' },
  },
  upstream: {
    resolve: {
      kind: 'stringMap',
      default: {},
      check: (_host, ip) => (canonicalIp(ip) ? null : `expected an IP address, got ${JSON.stringify(ip)}`),
    },
    allowPrivateNetworks: { kind: 'stringArray', default: [], check: validateCidr },
    caFiles: { kind: 'stringArray', default: [] },
    dnsTimeoutMs: { kind: 'integer', default: 5_000, min: 100, max: 60_000 },
    dnsCacheMs: { kind: 'integer', default: 30_000, min: 0, max: 3_600_000 },
  },
  limits: {
    requestsPerSecond: { kind: 'integer', default: 50, min: 1, max: 1_000_000 },
    burst: { kind: 'integer', default: 100, min: 1, max: 1_000_000 },
    maxConnections: { kind: 'integer', default: 256, min: 1, max: 1_000_000 },
    perHostRequestsPerSecond: { kind: 'integer', default: 0, min: 0, max: 1_000_000 },
    perHostBurst: { kind: 'integer', default: 0, min: 0, max: 1_000_000 },
    environmentRequestsPerSecond: { kind: 'integer', default: 0, min: 0, max: 10_000_000 },
    environmentBurst: { kind: 'integer', default: 0, min: 0, max: 10_000_000 },
    bandwidthBytesPerSecond: { kind: 'integer', default: 0, min: 0, max: 100 * 1024 * MiB },
  },
  metrics: {
    hostLabels: { kind: 'boolean', default: false },
    maxHostLabels: { kind: 'integer', default: 1_000, min: 1, max: 100_000 },
  },
  logging: {
    level: { kind: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
  inspection: {
    caDir: { kind: 'string', default: 'certs' },
    leafCacheSize: { kind: 'integer', default: 1_000, min: 1, max: 1_000_000 },
  },
  content: {
    secretPatterns: { kind: 'array', default: [] },
  },
  github: {
    hosts: { kind: 'stringArray', default: ['github.com'] },
    apiHosts: { kind: 'stringArray', default: ['api.github.com'] },
    username: { kind: 'string', default: 'x-access-token' },
    credentialFile: { kind: 'string', default: '', allowEmpty: true },
    credentialEnv: { kind: 'string', default: '', allowEmpty: true },
    maxPushBytes: { kind: 'integer', default: 512 * MiB, min: 1024, max: 4096 * MiB },
  },
  environments: { kind: 'array', default: [] },
};

export type LoadResult = { ok: true; config: Config } | { ok: false; file: string; errors: ConfigError[] };

/** Which file to read: --config, else $EGRESS_CONFIG, else the embedded default. */
export function configFileFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env.EGRESS_CONFIG;
  if (chosen) return resolve(chosen);
  const local = resolve(defaultConfigFile);
  return existsSync(local) ? local : resolve(packageRoot, defaultConfigFile);
}

/**
 * Relative paths are taken from the working directory, like every command-line tool; when that
 * file does not exist and the package ships one (the embedded allowlist, say), the package's wins,
 * so that `egress-gate serve` works from any folder.
 */
function resolvePath(path: string): string {
  if (isAbsolute(path)) return path;
  const local = resolve(path);
  if (existsSync(local)) return local;
  const shipped = resolve(packageRoot, path);
  return existsSync(shipped) ? shipped : local;
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { ok: false, file, errors: doc.errors.map((e) => ({ path: '(yaml)', message: e.message.split('\n')[0] ?? e.message })) };
  }
  const { value, errors } = applySchema(schema, doc.toJS());
  if (errors.length > 0) return { ok: false, file, errors };
  const secrets = compileSecretFormats((value.content as { secretPatterns: unknown[] }).secretPatterns);
  if (!secrets.ok) return { ok: false, file, errors: secrets.errors };
  const config = value as unknown as Config;
  config.file = file;
  config.admin.token = env.EGRESS_ADMIN_TOKEN || config.admin.token;
  // The URL may carry a password: the environment keeps it out of the config file.
  config.store.redis.url = env.EGRESS_REDIS_URL || config.store.redis.url;
  config.stateDir = resolve(config.stateDir);
  config.defaults.allowlist = resolvePath(config.defaults.allowlist);
  if (config.github.credentialFile) config.github.credentialFile = resolve(config.github.credentialFile);
  config.github.hosts = config.github.hosts.map((h) => h.toLowerCase());
  config.github.apiHosts = config.github.apiHosts.map((h) => h.toLowerCase());
  config.upstream.caFiles = config.upstream.caFiles.map(resolvePath);
  config.inspection.caDir = resolve(config.inspection.caDir);
  config.upstream.resolve = Object.fromEntries(
    Object.entries(config.upstream.resolve).map(([host, ip]) => [host.toLowerCase().replace(/\.$/, ''), ip]),
  );
  return { ok: true, config: deepFreeze(config) };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, file, errors: [{ path: '(file)', message: (error as Error).message }] };
  }
  return parseConfig(text, file, env);
}

export function formatErrors(file: string, errors: ConfigError[]): string {
  return errors.map((e) => `${file}: ${e.path}: ${e.message}`).join('\n');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
