// `egress-gate serve` as a child process: the real command, for tests of restarts and crashes.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './gate.js';
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
