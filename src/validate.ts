// `egress-gate validate`: every error in the config, the allowlist and the environment files,
// each with its file and key path. Nothing is started.

import { existsSync } from 'node:fs';
import { loadConfig } from './config/load.js';
import { FileStateStore } from './state/file-store.js';
import { readPolicyInputs, type FileErrors } from './state/policy-inputs.js';

export async function validateAll(configFile: string): Promise<FileErrors[]> {
  const loaded = loadConfig(configFile);
  if (!loaded.ok) return [{ file: loaded.file, errors: loaded.errors }];
  const inputs = readPolicyInputs(loaded.config);
  const problems: FileErrors[] = inputs.ok ? [] : [...inputs.problems];
  // A state folder that does not exist yet holds nothing to check; validate creates nothing.
  if (!existsSync(loaded.config.stateDir)) return problems;
  const store = new FileStateStore(loaded.config.stateDir);
  const report = await store.load().catch((error: Error) => ({ problems: [{ file: loaded.config.stateDir, errors: [{ path: '(state)', message: error.message }] }] }));
  problems.push(...report.problems);
  return problems;
}
