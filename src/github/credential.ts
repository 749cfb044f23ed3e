// The operator's real git credential, from a file or an environment variable named in the
// config. Read once at start; it lives only in this process's memory.

import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';

export type CredentialRead = { ok: true; credential: string | undefined } | { ok: false; path: string; message: string };

export function readGitCredential(config: Config['github'], env: NodeJS.ProcessEnv = process.env): CredentialRead {
  if (config.credentialFile) {
    try {
      const credential = readFileSync(config.credentialFile, 'utf8').trim();
      if (!credential) return { ok: false, path: 'github.credentialFile', message: `${config.credentialFile} is empty` };
      return { ok: true, credential };
    } catch (error) {
      return { ok: false, path: 'github.credentialFile', message: (error as NodeJS.ErrnoException).code ?? 'unreadable' };
    }
  }
  if (config.credentialEnv) {
    const credential = env[config.credentialEnv]?.trim();
    if (!credential) return { ok: false, path: 'github.credentialEnv', message: `$${config.credentialEnv} is not set` };
    return { ok: true, credential };
  }
  return { ok: true, credential: undefined };
}
