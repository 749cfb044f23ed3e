// The inspection CA (SPEC §7 `egress-gate ca init`): caDir/ca.pem (what sandboxes trust, and
// what GET /v1/ca.pem serves), caDir/ca.key (mode 0600, never leaves the proxy), and
// caDir/bundle.pem (Node's root store plus the CA, for tools whose CA setting replaces their
// store rather than adding to it). Keys and signatures come from node's crypto; forge only lays
// out the certificates (its JavaScript RSA signs with a 3072-bit key in ~90 ms, node in ~2 ms).

import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type Forge from 'node-forge';
import { lazyRequire } from '../lazy-require.js';

/** node-forge, loaded when a certificate is first made or read. */
export const forge = lazyRequire<typeof Forge>('node-forge');
import { writeFileAtomic } from '../state/atomic.js';

export interface CaFiles {
  dir: string;
  cert: string;
  key: string;
  bundle: string;
}

export interface InspectionCa {
  certPem: string;
  cert: Forge.pki.Certificate;
  key: KeyObject;
}

export const caFiles = (dir: string): CaFiles => ({ dir, cert: join(dir, 'ca.pem'), key: join(dir, 'ca.key'), bundle: join(dir, 'bundle.pem') });

/** A positive serial of 128 random bits (RFC 5280 §4.1.2.2: unique per issuer, at most 20 octets). */
export const randomSerial = (): string => `0${randomBytes(16).toString('hex').slice(1)}`;

/** Signs with node's crypto: forge's own signing, in JavaScript, would cost each new host ~90 ms. */
export function signCertificate(cert: Forge.pki.Certificate, key: KeyObject): void {
  const digest = {
    algorithm: 'sha256',
    data: '',
    update(bytes: string) {
      this.data += bytes;
      return this;
    },
  };
  const signer = { sign: (md: typeof digest) => sign('sha256', Buffer.from(md.data, 'binary'), key).toString('binary') };
  cert.sign(signer as unknown as Forge.pki.rsa.PrivateKey, digest as unknown as Forge.md.MessageDigest);
}

/** An RSA key pair from node's crypto, with the public half in forge's form for certificates. */
export function rsaKeyPair(bits = 2048): { key: KeyObject; keyPem: string; publicKey: Forge.pki.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    key: privateKey,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: forge().pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
}

function createCa(): { certPem: string; keyPem: string } {
  const pair = rsaKeyPair(3072);
  const cert = forge().pki.createCertificate();
  cert.publicKey = pair.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(Date.now() - 24 * 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 5 * 365 * 24 * 3600_000);
  // A per-install suffix: two installs' CAs are told apart in a trust store.
  const subject = [
    { name: 'commonName', value: `egress-gate inspection CA ${randomBytes(4).toString('hex')}` },
    { name: 'organizationName', value: 'egress-gate' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, pair.key);
  return { certPem: forge().pki.certificateToPem(cert), keyPem: pair.keyPem };
}

export type InitResult = { ok: true; created: boolean; files: CaFiles } | { ok: false; error: string };

/** Creates the CA unless one exists. Never replaces an existing CA: sandboxes already trust it. */
export async function initCa(dir: string): Promise<InitResult> {
  const files = caFiles(dir);
  const hasCert = existsSync(files.cert);
  const hasKey = existsSync(files.key);
  if (hasCert !== hasKey) {
    return { ok: false, error: `${dir}: found ${hasCert ? 'ca.pem without ca.key' : 'ca.key without ca.pem'}; restore the missing file or remove the other, then run again` };
  }
  let created = false;
  let certPem: string;
  if (hasCert) {
    const loaded = loadCa(dir);
    if (!loaded.ok) return loaded;
    certPem = loaded.ca.certPem;
  } else {
    const ca = createCa();
    // Key first: a crash in between leaves a key without a certificate, which the check above reports.
    await writeFileAtomic(files.key, ca.keyPem, 0o600);
    await writeFileAtomic(files.cert, ca.certPem, 0o644);
    certPem = ca.certPem;
    created = true;
  }
  if (created || !existsSync(files.bundle)) await writeFileAtomic(files.bundle, `${rootCertificates.join('\n')}\n${certPem}`, 0o644);
  return { ok: true, created, files };
}

export type LoadedCa = { ok: true; ca: InspectionCa } | { ok: false; error: string };

export function loadCa(dir: string): LoadedCa {
  const files = caFiles(dir);
  try {
    const certPem = readFileSync(files.cert, 'utf8');
    const key = createPrivateKey(readFileSync(files.key));
    return { ok: true, ca: { certPem, cert: forge().pki.certificateFromPem(certPem), key } };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, error: `no inspection CA in ${dir}: run "egress-gate ca init"` };
    return { ok: false, error: `${dir}: cannot read the inspection CA: ${(error as Error).message}` };
  }
}
