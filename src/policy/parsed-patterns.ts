// Parsed allowlist entries remembered by the list they came from. Validation parses every
// entry anyway; compiling the validated policy would parse them all again (about half a second
// for 100 000 entries). Keyed weakly by the list object, so nothing outlives its policy.

import type { DomainPattern } from './domains.js';

const parsedByList = new WeakMap<readonly string[], readonly DomainPattern[]>();

export function rememberParsed(list: readonly string[], parsed: readonly DomainPattern[]): void {
  parsedByList.set(list, parsed);
}

export function recallParsed(list: readonly string[]): readonly DomainPattern[] | undefined {
  return parsedByList.get(list);
}
