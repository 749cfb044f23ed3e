// Starts a real egress-gate (the same Runtime `serve` builds) on 127.0.0.1:0 with a temporary
// state folder, and captures its log lines so tests can read what it recorded.

import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { parseConfig, formatErrors } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { Runtime } from '../../src/runtime.js';
import { startAdmin } from '../../src/admin/server.js';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface Gate {
  runtime: Runtime;
  proxyPort: number;
  proxyUrl: string;
  adminUrl: string | undefined;
  stateDir: string;
  configFile: string;
  logs: string[];
  decisions(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface GateOptions {
  /** Merged over a test base config (ports 0, temp stateDir, loopback exempted as needed). */
  config?: Record<string, unknown>;
  /** Written as stateDir/environments/<id>.yaml before start. */
  environments?: Record<string, unknown>[];
  admin?: boolean;
}

export function tempDir(prefix = 'egress-gate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(dir: string, config: Record<string, unknown>, environments: Record<string, unknown>[] = []): string {
  const stateDir = join(dir, 'state');
  mkdirSync(join(stateDir, 'environments'), { recursive: true });
  for (const env of environments) writeFileSync(join(stateDir, 'environments', `${env.id as string}.yaml`), stringify(env));
  const full = {
    proxy: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token: 'test-admin-token-0123456789' },
    stateDir,
    defaults: { allowlist: join(repoRoot, 'allowlists/default.yaml') },
    inspection: { caDir: join(dir, 'certs') },
    ...config,
  };
  const file = join(dir, 'egress.yaml');
  writeFileSync(file, stringify(full));
  return file;
}

export async function startGate(options: GateOptions = {}): Promise<Gate> {
  const dir = tempDir();
  const configFile = writeConfig(dir, options.config ?? {}, options.environments);
  const loaded = parseConfig((await import('node:fs')).readFileSync(configFile, 'utf8'), configFile, {});
  if (!loaded.ok) throw new Error(formatErrors(loaded.file, loaded.errors));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(line);
      callback();
    },
  });
  const created = await Runtime.create(loaded.config, createLogger('info', sink));
  if (!created.ok) throw new Error(JSON.stringify(created.problems));
  const runtime = created.runtime;
  const started = await runtime.start(options.admin === false ? undefined : startAdmin);
  return {
    runtime,
    proxyPort: started.proxy.port,
    proxyUrl: `http://127.0.0.1:${started.proxy.port}`,
    adminUrl: started.admin,
    stateDir: loaded.config.stateDir,
    configFile,
    logs,
    decisions: () => logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === 'decision'),
    async stop() {
      await runtime.stop(200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
