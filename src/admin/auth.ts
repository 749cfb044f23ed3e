// Bearer-token authentication for the admin API. The token comes from admin.token or
// $EGRESS_ADMIN_TOKEN; when neither is set, one is generated at first start into
// stateDir/admin-token (mode 0600) and reused after. Its path is logged, never its value.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function resolveAdminToken(configured: string, stateDir: string): Promise<{ token: string; generatedAt?: string }> {
  if (configured) return { token: configured };
  const file = join(stateDir, 'admin-token');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  try {
    // Exclusive create: two workers starting at once agree on one token.
    const handle = await open(file, 'wx', 0o600);
    const token = randomBytes(32).toString('base64url');
    await handle.writeFile(`${token}\n`);
    await handle.sync();
    await handle.close();
    return { token, generatedAt: file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const token = (await readFile(file, 'utf8')).trim();
  if (!token) throw new Error(`${file} is empty: delete it to generate a new admin token`);
  return { token };
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
  const presented = match?.[1] ?? '';
  return timingSafeEqual(digest(presented), digest(token)) && presented !== '';
}
