// Sessions written through the real state store (the admin API's path), for tests of the proxy.

import { hashToken, newSessionCredentials } from '../../src/state/sessions.js';
import type { Gate } from './gate.js';

export interface TestSession {
  id: string;
  token: string;
  /** http://id:token@127.0.0.1:port */
  proxyUrl: string;
}

export async function addSession(gate: Gate, environment: string): Promise<TestSession> {
  const { id, token } = newSessionCredentials();
  await gate.runtime.store.putSession({ id, environment, tokenHash: hashToken(token), createdAt: new Date().toISOString() });
  return { id, token, proxyUrl: `http://${id}:${token}@127.0.0.1:${gate.proxyPort}` };
}
