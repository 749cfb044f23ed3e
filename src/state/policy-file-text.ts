// The bytes of an environment file: exactly `JSON.stringify(policy, null, 2)` and a newline,
// built without serialising a long domain list again when the version before it was written
// by this process. A one-entry PATCH or PUT of a 100 000-entry list spent 8-10 ms in
// JSON.stringify and 3 more turning the 3 MB string into bytes, each time, on the loop that
// forwards traffic. The text of a long list is remembered with where each entry's line ends,
// so the next version reuses the lines of the entries the two versions share at the start and
// at the end, and encodes only what lies between.

import { commonEnds } from '../policy/common-ends.js';

const LISTS = new Set(['allowedDomains', 'deniedDomains']);

/** Shorter lists are serialised afresh: microseconds, and nothing kept for thousands of small environments. */
const REMEMBER_FROM = 1000;

const isLongList = (key: string, value: unknown): value is string[] => LISTS.has(key) && Array.isArray(value) && value.length >= REMEMBER_FROM;

/** One line per entry, each `\n    "entry",`: a list at the file's second level, with its comma. */
interface ListText {
  bytes: Buffer;
  /** `ends[i]`: where the line of entry i ends in `bytes`. */
  ends: Uint32Array;
}

/** The lines of `entries` and the length of each. */
function encodeLines(entries: readonly string[]): { bytes: Buffer; lengths: (i: number) => number } {
  if (entries.length === 0) return { bytes: Buffer.alloc(0), lengths: () => 0 };
  // `[\n    "a",\n    "b"\n]`: the lines, but for the last comma and the bracket.
  const bytes = Buffer.from(`${JSON.stringify(entries, null, 4).slice(1, -2)},`);
  let plain = 0;
  for (const entry of entries) plain += entry.length + 8;
  // An entry with an escape or a character beyond ASCII takes more bytes than that, never
  // fewer, so equal totals mean every line is its entry's length and 8.
  if (bytes.length === plain) return { bytes, lengths: (i) => (entries[i] as string).length + 8 };
  return { bytes, lengths: (i) => Buffer.byteLength(JSON.stringify(entries[i])) + 6 };
}

function listTextOf(entries: readonly string[]): ListText {
  const { bytes, lengths } = encodeLines(entries);
  const ends = new Uint32Array(entries.length);
  let at = 0;
  for (let i = 0; i < entries.length; i++) ends[i] = at += lengths(i);
  return { bytes, ends };
}

/** The text of `next`, reusing the text of `previous` for the entries the two share at either end. */
function listTextFrom(next: readonly string[], previous: readonly string[], before: ListText): ListText {
  const { prefix, suffix } = commonEnds(next, previous);
  const headEnd = prefix === 0 ? 0 : (before.ends[prefix - 1] as number);
  const tailStart = previous.length - suffix === 0 ? 0 : (before.ends[previous.length - suffix - 1] as number);
  const middle = listTextOf(next.slice(prefix, next.length - suffix));
  const bytes = Buffer.concat([before.bytes.subarray(0, headEnd), middle.bytes, before.bytes.subarray(tailStart)]);
  const ends = new Uint32Array(next.length);
  ends.set(before.ends.subarray(0, prefix));
  for (let i = 0; i < middle.ends.length; i++) ends[prefix + i] = headEnd + (middle.ends[i] as number);
  const shift = headEnd + middle.bytes.length - tailStart;
  for (let i = 0; i < suffix; i++) ends[next.length - suffix + i] = (before.ends[previous.length - suffix + i] as number) + shift;
  return { bytes, ends };
}

export class PolicyFileText {
  /** By list: kept while the policy holding the list is, so only the versions in use. */
  private lists = new WeakMap<readonly string[], ListText>();

  /** The file for `policy`; `previous` is the version it replaces, whose long lists' text it reuses. */
  of(policy: object, previous?: object): string | Buffer[] {
    const entries = Object.entries(policy);
    if (!entries.some(([key, value]) => isLongList(key, value))) return `${JSON.stringify(policy, null, 2)}\n`;
    const parts: (string | Buffer)[] = [];
    let separator = '{';
    for (const [key, value] of entries) {
      if (isLongList(key, value)) {
        const text = this.listText(value, (previous as Record<string, unknown> | undefined)?.[key]);
        // Without the last line's comma.
        parts.push(`${separator}\n  ${JSON.stringify(key)}: [`, text.bytes.subarray(0, text.bytes.length - 1), '\n  ]');
      } else {
        const json = JSON.stringify(value, null, 2) as string | undefined;
        if (json === undefined) continue; // as JSON.stringify leaves out undefined members
        // JSON has no raw newline inside a string, so every newline starts a line to indent.
        parts.push(`${separator}\n  ${JSON.stringify(key)}: ${json.replaceAll('\n', '\n  ')}`);
      }
      separator = ',';
    }
    parts.push(separator === '{' ? '{}\n' : '\n}\n');
    // Written part by part: joining them would copy the 3 MB once more.
    return parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part));
  }

  private listText(list: readonly string[], previous: unknown): ListText {
    const known = this.lists.get(list);
    if (known) return known;
    const before = Array.isArray(previous) ? this.lists.get(previous) : undefined;
    const text = before ? listTextFrom(list, previous as string[], before) : listTextOf(list);
    this.lists.set(list, text);
    return text;
  }
}
