// Edits of an environment's domain lists (PATCH /v1/environments/:id): entries added and
// removed without sending the whole list. For a 100 000-entry list a PUT carries 3 MB and
// validates every entry; an edit carries its entries, checks only those it adds, and takes the
// parsed form of every entry it keeps from the current version. Two operators editing one list
// at once both land, where two read-modify-write PUTs lose one of the edits.

import { parseDomainPattern, type DomainPattern } from './domains.js';
import type { PolicyError } from './environment.js';
import { recallParsed, rememberEdit, rememberParsed } from './parsed-patterns.js';
import type { EnvironmentPolicy } from './types.js';

const LISTS = ['allowedDomains', 'deniedDomains'] as const;
type ListKey = (typeof LISTS)[number];

export interface ListChange {
  /** Entries that were not in the list and now are, in the order given. */
  added: string[];
  /** Entries that were in the list and no longer are. */
  removed: string[];
  /** Entries in the list afterwards. */
  entries: number;
}

export type DomainEditResult = { ok: true; value: EnvironmentPolicy; changes: Record<ListKey, ListChange> } | { ok: false; errors: PolicyError[] };

type Wanted = Record<'add' | 'remove', Record<ListKey, string[]>>;

/** The body: `{ add?: { allowedDomains?, deniedDomains? }, remove?: { ... } }`, every item a string. */
function readEdits(raw: unknown, errors: PolicyError[]): Wanted {
  const wanted: Wanted = { add: { allowedDomains: [], deniedDomains: [] }, remove: { allowedDomains: [], deniedDomains: [] } };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push({ path: '(top level)', message: 'expected a mapping with "add" and/or "remove"' });
    return wanted;
  }
  for (const [action, lists] of Object.entries(raw)) {
    if (action !== 'add' && action !== 'remove') {
      errors.push({ path: action, message: 'unknown key (expected one of: add, remove)' });
      continue;
    }
    if (typeof lists !== 'object' || lists === null || Array.isArray(lists)) {
      errors.push({ path: action, message: 'expected a mapping of allowedDomains and/or deniedDomains' });
      continue;
    }
    for (const [key, items] of Object.entries(lists)) {
      if (key !== 'allowedDomains' && key !== 'deniedDomains') {
        errors.push({ path: `${action}.${key}`, message: 'unknown key (expected one of: allowedDomains, deniedDomains)' });
        continue;
      }
      if (!Array.isArray(items)) {
        errors.push({ path: `${action}.${key}`, message: 'expected a list of domain patterns' });
        continue;
      }
      items.forEach((item: unknown, i) => {
        const path = `${action}.${key}[${i}]`;
        if (typeof item !== 'string') return errors.push({ path, message: 'expected a domain pattern string' });
        // What is removed need not parse: an entry from an older release may be taken out.
        const parsed = action === 'add' ? parseDomainPattern(item) : undefined;
        if (parsed && !parsed.ok) return errors.push({ path, message: parsed.error });
        return wanted[action][key].push(item);
      });
    }
  }
  return wanted;
}

/** One list edited: removals first, then additions not already present (so an edit is idempotent). */
function editList(list: readonly string[], remove: readonly string[], add: readonly string[]): { list: string[]; parsed: DomainPattern[]; touched: DomainPattern[]; change: ListChange } {
  // A list that was validated has its parsed form remembered; one that somehow was not is parsed again.
  const known = recallParsed(list) ?? list.map((entry) => (parseDomainPattern(entry) as { pattern: DomainPattern }).pattern);
  // What the compiled list must look at again: the entries that went and the ones that came.
  const touched: DomainPattern[] = [];
  const removed = new Set<string>();
  let kept: readonly string[] = list;
  let parsed: readonly DomainPattern[] = known;
  if (remove.length > 0) {
    const removing = new Set(remove);
    const keptEntries: string[] = [];
    const keptPatterns: DomainPattern[] = [];
    for (let i = 0; i < list.length; i++) {
      const entry = list[i] as string;
      if (removing.has(entry)) {
        removed.add(entry);
        touched.push(known[i] as DomainPattern);
      } else {
        keptEntries.push(entry);
        keptPatterns.push(known[i] as DomainPattern);
      }
    }
    kept = keptEntries;
    parsed = keptPatterns;
  }
  // A few additions are looked for in the list; many, through a set of it.
  const adding = new Set(add);
  const present: { has(entry: string): boolean } = adding.size <= 16 ? { has: (entry) => kept.includes(entry) } : new Set(kept);
  const added: string[] = [];
  const addedPatterns: DomainPattern[] = [];
  for (const entry of adding) {
    if (present.has(entry)) continue;
    const pattern = (parseDomainPattern(entry) as { pattern: DomainPattern }).pattern;
    added.push(entry);
    addedPatterns.push(pattern);
    touched.push(pattern);
  }
  // One copy of each list with the additions in it: pushing onto a copy of 100 000 entries
  // copies it again to grow it.
  return { list: kept.concat(added), parsed: parsed.concat(addedPatterns), touched, change: { added, removed: [...removed], entries: kept.length + added.length } };
}

/** `policy` with the edits in `raw` applied, or every error in `raw` with its path. */
export function editDomainLists(policy: EnvironmentPolicy, raw: unknown): DomainEditResult {
  const errors: PolicyError[] = [];
  const wanted = readEdits(raw, errors);
  if (errors.length > 0) return { ok: false, errors };
  const value: EnvironmentPolicy = { ...policy };
  const changes = {} as Record<ListKey, ListChange>;
  for (const key of LISTS) {
    const edited = editList(policy[key], wanted.remove[key], wanted.add[key]);
    rememberParsed(edited.list, edited.parsed);
    rememberEdit(edited.list, { from: policy[key], touched: edited.touched });
    value[key] = edited.list;
    changes[key] = edited.change;
  }
  return { ok: true, value, changes };
}
