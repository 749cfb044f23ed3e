// What a reload may change in a running process: the policy inputs (the Trusted allowlist file,
// defaults.alwaysAllow, the environments declared in the config). Listeners, the state backend,
// limits, timeouts and logging are wired into sockets and timers at start; a reload leaves them
// as they are and names the keys that changed, rather than applying half of a change.

import type { Config } from './types.js';

const live = new Set(['file', 'defaults', 'environments']);

export function applyLiveConfig(current: Config, next: Config): { config: Config; restartNeeded: string[] } {
  const restartNeeded: string[] = [];
  for (const key of Object.keys(next) as (keyof Config)[]) {
    if (!live.has(key)) changedPaths(current[key], next[key], key, restartNeeded);
  }
  const config = Object.freeze({ ...current, file: next.file, defaults: next.defaults, environments: next.environments });
  return { config, restartNeeded };
}

/** Dotted paths of the leaves that differ; arrays compare whole. Values are never reported (admin.token). */
function changedPaths(before: unknown, after: unknown, path: string, out: string[]): void {
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isRecord(before) && isRecord(after)) {
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) changedPaths(before[key], after[key], `${path}.${key}`, out);
    return;
  }
  if (JSON.stringify(before) !== JSON.stringify(after)) out.push(path);
}
