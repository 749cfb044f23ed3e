// What is known about a list of domain entries, remembered by the list object: the parsed
// entries (validation parses every entry anyway; compiling would parse them all again), and
// for a list made by an edit, which list it was made from and what changed (so compiling it
// can start from the previous tables). Keyed weakly, so nothing outlives its policy.

import { commonEnds } from './common-ends.js';
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
 * parses one entry. `build(middle)` makes the list and its parsed form from the previous
 * version's ends around what `middle` gives for the entries between them (their index in
 * `next`, parsed afresh), copying the shared parts in bulk; `remember(list, parsed)`, once
 * `next` validated whole, records the list's parsed form and, when there was a previous
 * version, what changed from it (so compiling it starts from the previous tables, as for a PATCH).
 */
export function reusableParsed(
  next: readonly unknown[],
  previous: readonly string[] | undefined,
): {
  build(middle: (from: number, to: number, list: string[], parsed: DomainPattern[]) => void): { list: string[]; parsed: DomainPattern[] };
  remember(list: readonly string[], parsed: readonly DomainPattern[]): void;
} {
  const before = previous && parsedByList.get(previous);
  const base = previous && before ? { previous, before, ...commonEnds(next, previous) } : undefined;
  const prefix = base?.prefix ?? 0;
  const suffixStart = next.length - (base?.suffix ?? 0);
  return {
    build(middle) {
      const list: string[] = [];
      const parsed: DomainPattern[] = [];
      middle(prefix, suffixStart, list, parsed);
      if (!base) return { list, parsed };
      // The previous version's strings, equal to the new ones: the policy in force keeps one copy
      // of each entry, and what compares this version with the next compares references.
      const tail = base.previous.length - base.suffix;
      return {
        list: base.previous.slice(0, prefix).concat(list, base.previous.slice(tail)),
        parsed: base.before.slice(0, prefix).concat(parsed, base.before.slice(tail)),
      };
    },
    remember(list, parsed) {
      rememberParsed(list, parsed);
      // Only a list that kept every item lines up with `next` index for index.
      if (!base || list.length !== next.length) return;
      const touched = base.before.slice(prefix, base.previous.length - base.suffix).concat(parsed.slice(prefix, suffixStart));
      rememberEdit(list, { from: base.previous, touched });
    },
  };
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

/**
 * The edit a list was made by, handed over once: compiling the list is its only use, and the
 * edit holds the previous version of the list, which holds its own edit, and so on: kept, every
 * version an environment ever had would stay in memory.
 */
export function takeEdit(list: readonly string[]): ListEdit | undefined {
  const edit = editsByList.get(list);
  editsByList.delete(list);
  return edit;
}
