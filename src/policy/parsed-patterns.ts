// What is known about a list of domain entries, remembered by the list object: the parsed
// entries (validation parses every entry anyway; compiling would parse them all again), and
// for a list made by an edit, which list it was made from and what changed (so compiling it
// can start from the previous tables). Keyed weakly, so nothing outlives its policy.

import type { DomainPattern } from './domains.js';

const parsedByList = new WeakMap<readonly string[], readonly DomainPattern[]>();

/** `parsed[i]` is what `list[i]` parses to. */
export function rememberParsed(list: readonly string[], parsed: readonly DomainPattern[]): void {
  parsedByList.set(list, parsed);
}

export function recallParsed(list: readonly string[]): readonly DomainPattern[] | undefined {
  return parsedByList.get(list);
}

/**
 * What validation can take from the previous version of a list instead of parsing again: the
 * entries of the common prefix and the common suffix of the two lists. An entry added, removed
 * or changed anywhere leaves the rest in place, so a one-entry edit of a 100 000-entry list
 * parses one entry. Returns the pattern for index `i` of `next`, or undefined to parse it.
 */
export function reusableParsed(next: readonly unknown[], previous: readonly string[] | undefined): (i: number) => DomainPattern | undefined {
  const parsed = previous && parsedByList.get(previous);
  if (!previous || !parsed) return () => undefined;
  const shorter = Math.min(next.length, previous.length);
  let prefix = 0;
  while (prefix < shorter && next[prefix] === previous[prefix]) prefix++;
  let suffix = 0;
  while (suffix < shorter - prefix && next[next.length - 1 - suffix] === previous[previous.length - 1 - suffix]) suffix++;
  const shift = previous.length - next.length;
  const suffixStart = next.length - suffix;
  return (i) => (i < prefix ? parsed[i] : i >= suffixStart ? parsed[i + shift] : undefined);
}

/** A list made by editing another (domain-edits.ts): the entries it added and removed. */
export interface ListEdit {
  from: readonly string[];
  touched: readonly DomainPattern[];
}

const editsByList = new WeakMap<readonly string[], ListEdit>();

export function rememberEdit(list: readonly string[], edit: ListEdit): void {
  editsByList.set(list, edit);
}

export function recallEdit(list: readonly string[]): ListEdit | undefined {
  return editsByList.get(list);
}
