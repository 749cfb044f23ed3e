// Sessions: who a proxy client is. A session binds an id and a secret token to one environment.
// Only a SHA-256 of the token is kept (the token is 256 random bits, so a slow hash buys
// nothing); a stolen state folder does not yield working credentials.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  id: string;
  environment: string;
  tokenHash: string;
  createdAt: string;
  /** Free-form extension data owned by later features (git scope, say). */
  [extension: string]: unknown;
}

export const sessionIdPattern = /^[a-z0-9_-]{1,64}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newSessionCredentials(): { id: string; token: string } {
  return { id: `ses_${randomBytes(12).toString('hex')}`, token: randomBytes(32).toString('base64url') };
}

/** Constant-time comparison of a presented token with the stored hash. */
export function tokenMatches(session: Session, token: string): boolean {
  const presented = Buffer.from(hashToken(token), 'hex');
  const stored = Buffer.from(session.tokenHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

export function parseSessionFile(raw: unknown): Session | string {
  if (typeof raw !== 'object' || raw === null) return 'expected a JSON object';
  const s = raw as Record<string, unknown>;
  if (typeof s.id !== 'string' || !sessionIdPattern.test(s.id)) return 'id: expected 1-64 of [a-z0-9_-]';
  if (typeof s.environment !== 'string') return 'environment: expected a string';
  if (typeof s.tokenHash !== 'string' || !/^[0-9a-f]{64}$/.test(s.tokenHash)) return 'tokenHash: expected a SHA-256 hex digest';
  if (typeof s.createdAt !== 'string') return 'createdAt: expected a string';
  return s as Session;
}
