// A session's git scope: which repositories it may reach and which refs it may push.
// Set at session creation; enforced on inspected requests to the configured git hosts.

import picomatch from 'picomatch';

export interface GitScope {
  /** `owner/name`, case-insensitive. */
  repositories: string[];
  /** Full ref names (`refs/heads/claude/x`) or picomatch globs (`refs/heads/claude/*`). */
  branches: string[];
  allowDelete: boolean;
  allowForcePush: boolean;
}

export interface CompiledScope {
  scope: GitScope;
  hasRepository(owner: string, name: string): boolean;
  mayPush(ref: string): boolean;
}

const REPOSITORY = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;
const REF = /^refs\/[A-Za-z0-9_.\/*?{},[\]-]{1,250}$/;

export function validateGitScope(raw: unknown): { ok: true; value: GitScope } | { ok: false; errors: { path: string; message: string }[] } {
  const errors: { path: string; message: string }[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, errors: [{ path: 'git', message: 'expected a mapping' }] };
  const source = raw as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    if (!['repositories', 'branches', 'allowDelete', 'allowForcePush'].includes(key)) errors.push({ path: `git.${key}`, message: 'unknown key (expected one of: repositories, branches, allowDelete, allowForcePush)' });
  }
  const list = (key: 'repositories' | 'branches', pattern: RegExp, what: string): string[] => {
    const value = source[key];
    if (!Array.isArray(value) || value.length === 0) {
      errors.push({ path: `git.${key}`, message: `expected a non-empty list of ${what}` });
      return [];
    }
    value.forEach((item, index) => {
      if (typeof item !== 'string' || !pattern.test(item)) errors.push({ path: `git.${key}[${index}]`, message: `expected ${what}, got ${JSON.stringify(item)}` });
    });
    return value as string[];
  };
  const repositories = list('repositories', REPOSITORY, '"owner/name"');
  const branches = list('branches', REF, 'a ref such as "refs/heads/claude/x" (globs allowed)');
  const flag = (key: 'allowDelete' | 'allowForcePush'): boolean => {
    if (source[key] === undefined) return false;
    if (typeof source[key] !== 'boolean') errors.push({ path: `git.${key}`, message: 'expected true or false' });
    return source[key] === true;
  };
  const allowDelete = flag('allowDelete');
  const allowForcePush = flag('allowForcePush');
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { repositories, branches, allowDelete, allowForcePush } };
}

export function compileScope(scope: GitScope): CompiledScope {
  const repositories = new Set(scope.repositories.map((r) => r.toLowerCase()));
  const matchers = scope.branches.map((b) => picomatch(b, { dot: true }));
  return {
    scope,
    hasRepository: (owner, name) => repositories.has(`${owner}/${name.replace(/\.git$/, '')}`.toLowerCase()),
    mayPush: (ref) => matchers.some((m) => m(ref)),
  };
}
