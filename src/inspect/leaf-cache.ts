// Leaf certificates for inspected hosts, made on first use and kept in a bounded LRU. Every
// leaf shares one key generated at start, so a new host costs one signature and a certificate
// layout (~9 ms measured, bench/inspect.js) rather than an RSA-2048 key generation (~250 ms),
// which a burst of new hosts would otherwise queue behind on the event loop.

import { createSecureContext, type SecureContext } from 'node:tls';
import { canonicalIp } from '../policy/addresses.js';
import { forge, randomSerial, rsaKeyPair, signCertificate, type InspectionCa } from './ca.js';

/** Browsers cap leaf lifetimes (398 days); short ones also bound what a stolen leaf is worth. */
const LEAF_DAYS = 30;
/** A cached leaf is remade after this, well before it expires. */
const REFRESH_MS = 7 * 24 * 3600_000;

interface Entry {
  context: SecureContext;
  made: number;
}

export class LeafCache {
  private readonly entries = new Map<string, Entry>();
  private readonly leaf = rsaKeyPair(2048);
  /** Leaves made since start (a miss costs a signature). */
  generated = 0;

  constructor(
    private readonly ca: InspectionCa,
    private readonly capacity: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The TLS context presenting a leaf for `host` (a normalised name or IP literal). */
  contextFor(host: string): SecureContext {
    const now = Date.now();
    const hit = this.entries.get(host);
    if (hit && now - hit.made < REFRESH_MS) {
      // Map order is insertion order: re-inserting marks the entry most recently used.
      this.entries.delete(host);
      this.entries.set(host, hit);
      return hit.context;
    }
    const context = createSecureContext({ key: this.leaf.keyPem, cert: this.issue(host, now) });
    this.entries.delete(host);
    this.entries.set(host, { context, made: now });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    this.generated += 1;
    return context;
  }

  private issue(host: string, now: number): string {
    const cert = forge().pki.createCertificate();
    cert.publicKey = this.leaf.publicKey;
    cert.serialNumber = randomSerial();
    // A day of slack for sandboxes whose clocks run behind.
    cert.validity.notBefore = new Date(now - 24 * 3600_000);
    const caEnd = this.ca.cert.validity.notAfter.getTime();
    cert.validity.notAfter = new Date(Math.min(now + LEAF_DAYS * 24 * 3600_000, caEnd));
    // commonName is limited to 64 characters (RFC 5280 ub-common-name); the SAN carries the name.
    cert.setSubject([{ name: 'commonName', value: host.slice(0, 64) }]);
    cert.setIssuer(this.ca.cert.subject.attributes);
    const ip = canonicalIp(host);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [ip ? { type: 7, ip: ip.address } : { type: 2, value: host }] },
    ]);
    signCertificate(cert, this.ca.key);
    return forge().pki.certificateToPem(cert);
  }
}
