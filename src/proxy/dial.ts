// From a permitted host name to a connected socket, with the private-address block in between.
// The address that is checked is the address that is dialled: no second lookup, so a DNS answer
// that changes between check and connect (rebinding) cannot steer the connection inward.

import { lookup } from 'node:dns/promises';
import { connect, type OnReadOpts, type Socket } from 'node:net';
import { canonicalIp, checkAddress, type CidrSet } from '../policy/addresses.js';
import type { ReasonCode } from '../policy/types.js';
import { remember } from '../policy/remember.js';
import type { Lookup } from './dns-cache.js';

export interface DialOptions {
  /** Host overrides, like curl --resolve (tests, split horizon). */
  resolve: Readonly<Record<string, string>>;
  exempt: CidrSet;
  dnsTimeoutMs: number;
  connectTimeoutMs: number;
  /**
   * The resolver; dns.promises.lookup when absent. A seam for the fault tests only (a DNS
   * answer mixing allowed and private addresses, a lookup that fails or hangs) so that no test
   * depends on, or sends a query to, a real resolver. Set it on `runtime.context.dial`.
   */
  lookup?: Lookup;
  /** The system resolver behind its cache (runtime.ts builds it from `upstream.dnsCacheMs`); uncached when absent. */
  system?: Lookup;
}

/** getaddrinfo, as curl and every other client on the machine would resolve. */
export const systemLookup: Lookup = (host) => lookup(host, { all: true, verbatim: true });

export type Resolution =
  | { ok: true; addresses: string[]; dnsMs: number }
  | { ok: false; reason: Extract<ReasonCode, 'dns_failure' | 'private_address' | 'upstream_timeout'>; detail: string };

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves and checks every address. One private address in the answer refuses the whole answer. */
export async function resolveTarget(host: string, options: DialOptions): Promise<Resolution> {
  const started = performance.now();
  let addresses: string[];
  const literal = literalAddress(host);
  const override = options.resolve[host];
  if (literal !== null) {
    addresses = [literal];
  } else if (override !== undefined) {
    addresses = [literalAddress(override) ?? override];
  } else {
    try {
      const answer = await withTimeout((options.lookup ?? options.system ?? systemLookup)(host), options.dnsTimeoutMs);
      if (answer === 'timeout') return { ok: false, reason: 'dns_failure', detail: 'DNS lookup timed out' };
      addresses = answer.map((a) => a.address);
    } catch (error) {
      return { ok: false, reason: 'dns_failure', detail: (error as NodeJS.ErrnoException).code ?? 'lookup failed' };
    }
    if (addresses.length === 0) return { ok: false, reason: 'dns_failure', detail: 'no address' };
  }
  for (const address of addresses) {
    const verdict = addressVerdict(address, options.exempt);
    if (verdict.blocked) return { ok: false, reason: 'private_address', detail: `${address} is ${verdict.class}` };
  }
  return { ok: true, addresses, dnsMs: performance.now() - started };
}

// Parsing and classifying an address allocates a little every time, and every request asks
// about the same few hosts and addresses: both answers are remembered.
const literals = new Map<string, string | null>();
const verdicts = new WeakMap<CidrSet, Map<string, ReturnType<typeof checkAddress>>>();

/** The canonical address when `host` is an IP literal in any spelling, else null. */
function literalAddress(host: string): string | null {
  return remember(literals, host, () => canonicalIp(host)?.address ?? null);
}

function addressVerdict(address: string, exempt: CidrSet): ReturnType<typeof checkAddress> {
  let byAddress = verdicts.get(exempt);
  if (!byAddress) {
    byAddress = new Map();
    verdicts.set(exempt, byAddress);
  }
  return remember(byAddress, address, () => checkAddress(address, exempt));
}

export type Dialled =
  | { ok: true; socket: Socket; address: string; connectMs: number }
  | { ok: false; reason: Extract<ReasonCode, 'upstream_unreachable' | 'upstream_timeout'>; detail: string };

function connectOnce(address: string, port: number, timeoutMs: number, onread: OnReadOpts | undefined): Promise<Dialled> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host: address, port, allowHalfOpen: true, noDelay: true, onread });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, reason: 'upstream_timeout', detail: `connect to ${address}:${port} timed out` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({ ok: true, socket, address, connectMs: performance.now() - started });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, reason: 'upstream_unreachable', detail: error.code ?? error.message });
    });
  });
}

/**
 * Tries the checked addresses in order; the first that answers wins. `onread`, when given,
 * is the socket's own read buffer and callback (pooled-reads.ts) in place of its data events.
 */
export async function dialChecked(addresses: string[], port: number, timeoutMs: number, onread?: OnReadOpts): Promise<Dialled> {
  let last: Dialled = { ok: false, reason: 'upstream_unreachable', detail: 'no address' };
  for (const address of addresses.slice(0, 4)) {
    last = await connectOnce(address, port, timeoutMs, onread);
    if (last.ok) return last;
  }
  return last;
}
