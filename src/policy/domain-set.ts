// A list of domain patterns compiled for lookup (SPEC §3 "Domain matching"): hash maps whose
// lookup cost depends on the host's label count, not on the list size. An edit of a few
// entries (PATCH) is compiled as an overlay over the previous tables instead of rebuilding
// them: rebuilding 100 000 entries takes 20-30 ms, the overlay a scan of the list.

import { isIpLiteral, type DomainPattern } from './domains.js';

export type DomainMatch = { matched: false } | { matched: true; portAllowed: boolean; rule: string };

export interface DomainSet {
  /** Number of entries compiled in. */
  readonly size: number;
  /**
   * Does `host` (already normalised) match an entry, and does a matching entry allow `port`?
   * `defaultPorts` are the ports an entry without a port allows ('any' = every port).
   */
  match(host: string, port: number, defaultPorts: ReadonlySet<number> | 'any'): DomainMatch;
}

/**
 * Entries of one host (or one wildcard suffix), arranged for the port check. Most hosts have
 * one entry without a port: that bucket is just the entry (an object each was most of a big
 * list's compile time and garbage).
 */
type Bucket = string | PortedBucket;

interface PortedBucket {
  /** The first entry without a port: allows the caller's default ports. */
  portless?: string;
  /** Port-scoped entries: port -> rule. */
  ports: Map<number, string>;
  /** The first entry seen, reported when the host matched but no entry allowed the port. */
  first: string;
}

type Kind = DomainPattern['kind'];
/** One map per kind of entry. In an overlay, null: the host has no entry left. */
type Tables<B> = Record<Kind, Map<string, B>>;

interface Compiled {
  tables: Tables<Bucket>;
  /** Buckets an edit recomputed, looked up before `tables`. */
  overlay?: Tables<Bucket | null>;
  overlaySize: number;
  /** wildcardDepths[n]: some wildcard suffix has n labels (a name has at most 127). */
  wildcardDepths: Uint8Array;
}

export interface CompiledDomainSet extends DomainSet {
  readonly compiled: Compiled;
}

const NO_MATCH: DomainMatch = Object.freeze({ matched: false });

function addTo(map: Map<string, Bucket | null>, pattern: DomainPattern): void {
  const bucket = map.get(pattern.host) ?? undefined;
  if (pattern.port === undefined) {
    if (bucket === undefined) map.set(pattern.host, pattern.source);
    else if (typeof bucket !== 'string') bucket.portless ??= pattern.source;
    return;
  }
  if (bucket === undefined || typeof bucket === 'string') {
    const ported: PortedBucket = { ports: new Map([[pattern.port, pattern.source]]), first: bucket ?? pattern.source };
    if (bucket !== undefined) ported.portless = bucket;
    map.set(pattern.host, ported);
  } else if (!bucket.ports.has(pattern.port)) {
    bucket.ports.set(pattern.port, pattern.source);
  }
}

/** The entry a bucket reports when the host matched but no entry allowed the port. */
const firstOf = (bucket: Bucket): string => (typeof bucket === 'string' ? bucket : bucket.first);

/** The rule of `bucket` that allows `port`, if any. */
function allowing(bucket: Bucket, port: number, defaultPorts: ReadonlySet<number> | 'any'): string | undefined {
  let portless: string | undefined;
  if (typeof bucket === 'string') {
    portless = bucket;
  } else {
    const scoped = bucket.ports.get(port);
    if (scoped !== undefined) return scoped;
    portless = bucket.portless;
  }
  return portless !== undefined && (defaultPorts === 'any' || defaultPorts.has(port)) ? portless : undefined;
}

const labelCount = (host: string): number => {
  let labels = 1;
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) labels += 1;
  return labels;
};

const emptyTables = <B>(): Tables<B> => ({ exact: new Map(), wildcard: new Map(), ip: new Map() });

/**
 * Compile entries into hash maps. A lookup costs one probe for the exact host and one per
 * suffix of it (`a.b.example.com` probes `b.example.com`, `example.com`, `com` for wildcards),
 * so a 10-entry list and a 10,000-entry list answer in the same time. Suffixes with a label
 * count no wildcard has are not probed: in a big list each probe is a cache miss.
 */
export function compileDomainSet(patterns: readonly DomainPattern[]): CompiledDomainSet {
  const tables = emptyTables<Bucket>();
  const wildcardDepths = new Uint8Array(128);
  for (const pattern of patterns) {
    if (pattern.kind === 'wildcard') wildcardDepths[Math.min(127, labelCount(pattern.host))] = 1;
    addTo(tables[pattern.kind], pattern);
  }
  return domainSet(patterns.length, { tables, overlaySize: 0, wildcardDepths });
}

/**
 * `previous` edited into `patterns`, the whole new list, where `touched` are the entries added
 * and removed. Every host a touched entry names gets its bucket recomputed from `patterns`, in
 * list order, so the first entry of a host is still the one reported. Overlays accumulate over
 * the same tables until they hold a sixteenth of the list; then the list is compiled afresh.
 */
export function editDomainSet(previous: CompiledDomainSet, patterns: readonly DomainPattern[], touched: readonly DomainPattern[]): CompiledDomainSet {
  if (touched.length === 0 && patterns.length === previous.size) return previous;
  const { tables, overlay: before, overlaySize } = previous.compiled;
  if (overlaySize + touched.length > Math.max(1024, patterns.length / 16)) return compileDomainSet(patterns);
  const overlay: Tables<Bucket | null> = before
    ? { exact: new Map(before.exact), wildcard: new Map(before.wildcard), ip: new Map(before.ip) }
    : emptyTables<Bucket | null>();
  const wildcardDepths = previous.compiled.wildcardDepths.slice();
  const hosts = { exact: new Set<string>(), wildcard: new Set<string>(), ip: new Set<string>() };
  for (const pattern of touched) {
    hosts[pattern.kind].add(pattern.host);
    overlay[pattern.kind].set(pattern.host, null);
    // A wildcard that went leaves its depth set: one probe too many, never a wrong answer.
    if (pattern.kind === 'wildcard') wildcardDepths[Math.min(127, labelCount(pattern.host))] = 1;
  }
  for (const pattern of patterns) if (hosts[pattern.kind].has(pattern.host)) addTo(overlay[pattern.kind], pattern);
  let size = 0;
  for (const kind of ['exact', 'wildcard', 'ip'] as const) size += overlay[kind].size;
  return domainSet(patterns.length, { tables, overlay, overlaySize: size, wildcardDepths });
}

/** A host's bucket where an overlay may have recomputed it. */
function edited(overlay: Map<string, Bucket | null>, base: Map<string, Bucket>, host: string): Bucket | undefined {
  const bucket = overlay.get(host);
  return bucket === undefined ? base.get(host) : (bucket ?? undefined);
}

function domainSet(size: number, compiled: Compiled): CompiledDomainSet {
  const { tables, overlay, wildcardDepths } = compiled;
  const { exact, wildcard, ip } = tables;
  // Without an overlay each lookup is a plain map probe, as on a freshly compiled list.
  const exactEdits = overlay?.exact;
  const wildcardEdits = overlay?.wildcard;
  const ipEdits = overlay?.ip;
  const hasExact = exact.size > 0 || (exactEdits?.size ?? 0) > 0;
  const hasWildcard = wildcard.size > 0 || (wildcardEdits?.size ?? 0) > 0;
  const hasIp = ip.size > 0 || (ipEdits?.size ?? 0) > 0;

  return {
    size,
    compiled,
    match(host, port, defaultPorts) {
      // An IP literal only ever matches the same IP entry: `*.3.4` must not cover 1.2.3.4, and
      // a domain entry says nothing about whatever address a client typed.
      if (isIpLiteral(host)) {
        const bucket = hasIp ? (ipEdits ? edited(ipEdits, ip, host) : ip.get(host)) : undefined;
        if (!bucket) return NO_MATCH;
        const rule = allowing(bucket, port, defaultPorts);
        return rule !== undefined ? { matched: true, portAllowed: true, rule } : { matched: true, portAllowed: false, rule: firstOf(bucket) };
      }

      // Most specific first: the exact host, then wildcards from the longest suffix down. The
      // first entry that allows the port decides; if none does, report the most specific match.
      let refused: string | undefined;
      const exactBucket = hasExact ? (exactEdits ? edited(exactEdits, exact, host) : exact.get(host)) : undefined;
      if (exactBucket) {
        const rule = allowing(exactBucket, port, defaultPorts);
        if (rule !== undefined) return { matched: true, portAllowed: true, rule };
        refused = firstOf(exactBucket);
      }
      if (hasWildcard) {
        // Strict suffixes only: `*.example.com` never matches `example.com` itself.
        let depth = labelCount(host) - 1;
        for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1), depth -= 1) {
          if (wildcardDepths[Math.min(127, depth)] === 0) continue;
          const suffix = host.slice(dot + 1);
          const bucket = wildcardEdits ? edited(wildcardEdits, wildcard, suffix) : wildcard.get(suffix);
          if (!bucket) continue;
          const rule = allowing(bucket, port, defaultPorts);
          if (rule !== undefined) return { matched: true, portAllowed: true, rule };
          refused ??= firstOf(bucket);
        }
      }
      if (refused !== undefined) return { matched: true, portAllowed: false, rule: refused };
      return NO_MATCH;
    },
  };
}
