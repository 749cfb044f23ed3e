// `egress-gate serve` as a child process: the real command, for tests of restarts and crashes.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { adminToken } from './admin.js';
import { repoRoot, tempDir, writeConfig } from './gate.js';
import { freePort } from './redis.js';
import { cleanEnv } from './run.js';

export interface Served {
  child: ChildProcess;
  proxyPort: number;
  adminUrl: string;
  output: () => string;
  exited: Promise<number | null>;
}

export async function serve(configFile: string, env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist/cli.js'), 'serve', '--config', configFile], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = Date.now();
  for (;;) {
    const match = /"proxy":"[^"]*:(\d+)","admin":"(http:\/\/[^"]+)"/.exec(out);
    if (match) return { child, proxyPort: Number(match[1]), adminUrl: match[2] as string, output: () => out, exited };
    if (child.exitCode !== null || Date.now() - started > 15_000) throw new Error(`egress-gate serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * `serve` with `workers: N`. Workers share fixed ports (with port 0 each would bind its own). A
 * port found free can be taken by another test's listener before the workers bind it: then new
 * ports, twice at most. Resolves once every worker has printed its listening line.
 */
export async function serveWorkers(workers: number, config: Record<string, unknown>): Promise<Served> {
  for (let attempt = 1; ; attempt++) {
    const [proxy, admin] = [await freePort(), await freePort()];
    const file = writeConfig(tempDir(), {
      ...config,
      workers,
      proxy: { listen: `127.0.0.1:${proxy}` },
      admin: { listen: `127.0.0.1:${admin}`, token: adminToken },
    });
    let served: Served;
    try {
      served = await serve(file);
    } catch (error) {
      if (attempt >= 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
      continue;
    }
    await listeningWorkers(served, workers);
    return served;
  }
}

/** The pids of the workers that have printed their listening line, once there are at least `count`. */
export async function listeningWorkers(served: Served, count: number, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = [...served.output().matchAll(/"pid":(\d+)[^\n]*egress-gate listening/g)].map((m) => m[1] as string);
    if (pids.length >= count) return pids;
    if (Date.now() > deadline) throw new Error(`${pids.length} of ${count} workers listening:\n${served.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
