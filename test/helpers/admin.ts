// Calls the real admin API over HTTP, as an operator's script would.

import type { Gate } from './gate.js';

export const adminToken = 'test-admin-token-0123456789';

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

export async function api(gate: Gate | string, method: string, path: string, body?: unknown, token: string | null = adminToken): Promise<ApiAnswer> {
  const base = typeof gate === 'string' ? gate : (gate.adminUrl as string);
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (metrics, PEM): keep the text.
  }
  return { status: response.status, body: parsed, headers: response.headers };
}
