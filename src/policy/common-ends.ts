// How much of a list a new version shares with the previous one: the items equal at the start,
// then the items equal at the end of what is left. An entry added, removed or changed anywhere
// leaves the rest in these two runs, so one edit of a long list touches what lies between.

export function commonEnds(next: readonly unknown[], previous: readonly unknown[]): { prefix: number; suffix: number } {
  const shorter = Math.min(next.length, previous.length);
  let prefix = 0;
  while (prefix < shorter && next[prefix] === previous[prefix]) prefix++;
  let suffix = 0;
  while (suffix < shorter - prefix && next[next.length - 1 - suffix] === previous[previous.length - 1 - suffix]) suffix++;
  return { prefix, suffix };
}
