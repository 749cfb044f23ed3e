// The decision for each ref a push would update (pure). A refused push is refused whole:
// nothing reaches the upstream, and every ref is reported so git shows why.

import { isFastForward } from './pack.js';
import { isZeroId, type RefUpdate } from './pktline.js';
import type { CompiledScope } from './scope.js';

export interface RefVerdict {
  ref: string;
  ok: boolean;
  reason?: string;
}

export function decidePush(scope: CompiledScope, updates: RefUpdate[], parents: Map<string, string[]> | undefined): RefVerdict[] {
  const allowed = scope.scope.branches.join(', ');
  return updates.map(({ ref, oldId, newId }) => {
    const refuse = (why: string): RefVerdict => ({ ref, ok: false, reason: `push to ${ref} refused by egress-gate: ${why}` });
    if (!scope.mayPush(ref)) return refuse(`this session may push only to ${allowed}`);
    if (isZeroId(newId)) return scope.scope.allowDelete ? { ref, ok: true } : refuse('this session may not delete refs');
    if (isZeroId(oldId) || scope.scope.allowForcePush) return { ref, ok: true };
    if (!parents || !isFastForward(parents, oldId, newId)) return refuse('not a fast-forward, and this session may not force-push');
    return { ref, ok: true };
  });
}
