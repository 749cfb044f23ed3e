import { join } from 'node:path';
import { repoRoot } from '../helpers/gate.js';
import { run, cleanEnv, type RunResult } from '../helpers/run.js';

export const cliPath = join(repoRoot, 'dist', 'cli.js');

export function egressGate(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, [cliPath, ...args], { env: cleanEnv(env), cwd: repoRoot });
}
