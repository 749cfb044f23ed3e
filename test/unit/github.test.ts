// The GitHub proxy's pure parts: scope validation, the ref-update commands of a push, and the
// per-ref decision, as tables.

import { describe, expect, it } from 'vitest';
import { decidePush } from '../../src/github/push-policy.js';
import { flushPkt, parseCommands, pktLine } from '../../src/github/pktline.js';
import { compileScope, validateGitScope } from '../../src/github/scope.js';
import { isFastForward } from '../../src/github/pack.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const ZERO = '0'.repeat(40);
const scope = compileScope({ repositories: ['Acme/App'], branches: ['refs/heads/claude/*', 'refs/heads/exact'], allowDelete: false, allowForcePush: false });

describe('git scope', () => {
  it('validates every field and reports every error with its path', () => {
    const bad = validateGitScope({ repositories: ['no-slash', 3], branches: [], allowDelete: 'yes', extra: 1 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.map((e) => e.path)).toEqual(expect.arrayContaining(['git.extra', 'git.repositories[0]', 'git.repositories[1]', 'git.branches', 'git.allowDelete']));
    expect(validateGitScope({ repositories: ['acme/app'], branches: ['refs/heads/claude/x'] })).toMatchObject({ ok: true, value: { allowDelete: false, allowForcePush: false } });
  });

  it('matches repositories case-insensitively, with or without .git', () => {
    expect(scope.hasRepository('acme', 'app.git')).toBe(true);
    expect(scope.hasRepository('ACME', 'APP')).toBe(true);
    expect(scope.hasRepository('acme', 'app2')).toBe(false);
  });
});

describe('receive-pack commands', () => {
  it('parses the commands, their capabilities and what follows the flush', () => {
    const body = Buffer.concat([pktLine(`${A} ${B} refs/heads/claude/x\0report-status side-band-64k\n`), pktLine(`${ZERO} ${C} refs/tags/v2\n`), flushPkt, Buffer.from('PACK...')]);
    const parsed = parseCommands(body);
    expect(parsed).toMatchObject({ state: 'done', capabilities: ['report-status', 'side-band-64k'], updates: [{ oldId: A, newId: B, ref: 'refs/heads/claude/x' }, { oldId: ZERO, newId: C, ref: 'refs/tags/v2' }] });
    if (parsed.state === 'done') expect(parsed.rest.toString()).toBe('PACK...');
    expect(parseCommands(body.subarray(0, 20))).toEqual({ state: 'more' });
    expect(parseCommands(Buffer.from('zzzz'))).toMatchObject({ state: 'error' });
  });
});

describe('push decisions', () => {
  const parents = new Map([[B, [A]], [C, [ZERO]]]);
  const table: [string, string, string, string, boolean, RegExp | null][] = [
    ['fast-forward to a session branch', A, B, 'refs/heads/claude/x', true, null],
    ['new branch under the glob', ZERO, B, 'refs/heads/claude/new', true, null],
    ['exact branch', A, B, 'refs/heads/exact', true, null],
    ['main', A, B, 'refs/heads/main', false, /may push only to refs\/heads\/claude\/\*, refs\/heads\/exact/],
    ['a tag', ZERO, B, 'refs/tags/v1', false, /may push only/],
    ['a deletion', A, ZERO, 'refs/heads/claude/x', false, /may not delete/],
    ['a force-update', A, C, 'refs/heads/claude/x', false, /not a fast-forward/],
    ['an update whose commits are not in the pack', A, 'd'.repeat(40), 'refs/heads/claude/x', false, /not a fast-forward/],
  ];
  it.each(table)('%s', (_why, oldId, newId, ref, ok, reason) => {
    const [verdict] = decidePush(scope, [{ oldId, newId, ref }], parents);
    expect(verdict?.ok).toBe(ok);
    if (reason) expect(verdict?.reason).toMatch(reason);
  });

  it('walks several generations to find the old tip', () => {
    expect(isFastForward(new Map([[C, [B]], [B, [A]]]), A, C)).toBe(true);
    expect(isFastForward(new Map([[C, [B]]]), A, C)).toBe(false);
  });
});
