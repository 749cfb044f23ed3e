// Everything the policy is compiled from, read and validated together: the Trusted allowlist
// file, defaults.alwaysAllow, and the environments declared in the config. Used by serve,
// reload, check and validate alike, so the four can never disagree on what is valid.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseAllowlist } from '../policy/allowlist.js';
import { compileDefaults, type CompiledDefaults } from '../policy/decide.js';
import { parseDomainPattern, type DomainPattern } from '../policy/domains.js';
import { validateEnvironment } from '../policy/environment.js';
import type { EnvironmentPolicy } from '../policy/types.js';
import type { Config } from '../config/types.js';

export interface FileErrors {
  file: string;
  errors: { path: string; message: string }[];
}

export type PolicyInputs =
  | { ok: true; defaults: CompiledDefaults; trusted: DomainPattern[]; environments: EnvironmentPolicy[] }
  | { ok: false; problems: FileErrors[] };

export function readPolicyInputs(config: Config): PolicyInputs {
  const problems: FileErrors[] = [];
  let trusted: DomainPattern[] = [];
  try {
    const parsed = parseAllowlist(parseYaml(readFileSync(config.defaults.allowlist, 'utf8')));
    if (parsed.ok) trusted = parsed.patterns;
    else problems.push({ file: config.defaults.allowlist, errors: parsed.errors });
  } catch (error) {
    problems.push({ file: config.defaults.allowlist, errors: [{ path: '(file)', message: (error as Error).message.split('\n')[0] ?? 'unreadable' }] });
  }
  const alwaysAllow: DomainPattern[] = [];
  const configErrors: FileErrors['errors'] = [];
  config.defaults.alwaysAllow.forEach((entry, index) => {
    const parsed = parseDomainPattern(entry);
    if (parsed.ok) alwaysAllow.push(parsed.pattern);
    else configErrors.push({ path: `defaults.alwaysAllow[${index}]`, message: parsed.error });
  });
  const environments: EnvironmentPolicy[] = [];
  const seen = new Set<string>();
  config.environments.forEach((raw, index) => {
    const result = validateEnvironment(raw);
    if (!result.ok) {
      for (const e of result.errors) configErrors.push({ path: `environments[${index}].${e.path}`.replace(/\.\(/, ' ('), message: e.message });
      return;
    }
    if (seen.has(result.value.id)) {
      configErrors.push({ path: `environments[${index}].id`, message: `duplicate environment id "${result.value.id}"` });
      return;
    }
    seen.add(result.value.id);
    environments.push(result.value);
  });
  if (configErrors.length > 0) problems.push({ file: config.file, errors: configErrors });
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, defaults: compileDefaults({ trusted, alwaysAllow }), trusted, environments };
}
