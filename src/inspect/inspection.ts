// What an inspected tunnel needs beyond the proxy core: the CA and its leaf cache (loaded on
// first use, so a proxy that never inspects never reads key material) and the trust store for
// upstream TLS: node's default roots (its bundled Mozilla store, or the system's under
// --use-openssl-ca, plus NODE_EXTRA_CA_CERTS) and `upstream.caFiles`, read once at start.

import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { createSecureContext } from 'node:tls';
import { loadCa } from './ca.js';
import { LeafCache } from './leaf-cache.js';

export type UpstreamCas = { ok: true; pems: string[] } | { ok: false; problems: { file: string; errors: { path: string; message: string }[] }[] };

export function readUpstreamCas(files: readonly string[]): UpstreamCas {
  const pems: string[] = [];
  const problems: { file: string; errors: { path: string; message: string }[] }[] = [];
  files.forEach((file, i) => {
    try {
      const pem = readFileSync(file, 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in the file');
      pems.push(pem);
    } catch (error) {
      problems.push({ file, errors: [{ path: `upstream.caFiles[${i}]`, message: (error as Error).message }] });
    }
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, pems };
}

/** A missing CA is looked for again after this, so `ca init` takes effect without a restart. */
const RETRY_MS = 2_000;

export class Inspection {
  readonly upstreamAgent: Agent;
  private leaves: LeafCache | undefined;
  private failure: { at: number; error: string } | undefined;

  constructor(
    private readonly caDir: string,
    private readonly leafCacheSize: number,
    upstreamCaPems: readonly string[],
  ) {
    // No `ca` option: that would replace the default roots. Adding to them keeps both.
    const secureContext = createSecureContext();
    for (const pem of upstreamCaPems) secureContext.context.addCACert(pem);
    // A secureContext (not `ca`) also keeps the agent's pool key short: `ca` is part of it.
    this.upstreamAgent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 60_000, secureContext });
  }

  /** The leaf cache, or why there is none (fail closed: no CA, no inspected tunnel). */
  leafCache(): { ok: true; cache: LeafCache } | { ok: false; error: string } {
    if (this.leaves) return { ok: true, cache: this.leaves };
    if (this.failure && Date.now() - this.failure.at < RETRY_MS) return { ok: false, error: this.failure.error };
    const loaded = loadCa(this.caDir);
    if (!loaded.ok) {
      this.failure = { at: Date.now(), error: loaded.error };
      return { ok: false, error: loaded.error };
    }
    this.leaves = new LeafCache(loaded.ca, this.leafCacheSize);
    return { ok: true, cache: this.leaves };
  }

  close(): void {
    this.upstreamAgent.destroy();
  }
}
