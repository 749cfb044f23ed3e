// The admin token of SPEC §6 through the real `egress-gate serve`: generated at first start into
// stateDir/admin-token (mode 0600) when neither admin.token nor $EGRESS_ADMIN_TOKEN is set, its
// path logged and never its value, and the same token kept across restarts.

import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { api } from '../helpers/admin.js';
import { tempDir, writeConfig } from '../helpers/gate.js';
import { serve } from '../helpers/serve.js';

const noToken = { admin: { listen: '127.0.0.1:0', token: '' } };

describe('admin token', () => {
  it('is generated at first start into stateDir/admin-token (0600), logged by path only, and kept across restarts', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, noToken);
    const file = join(dir, 'state', 'admin-token');
    const first = await serve(config, { EGRESS_ADMIN_TOKEN: '' });
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const token = readFileSync(file, 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(first.output()).toContain(file);
      expect(first.output()).not.toContain(token);
      expect((await api(first.adminUrl, 'GET', '/v1/environments', undefined, token)).status).toBe(200);
      expect((await api(first.adminUrl, 'GET', '/v1/environments', undefined, null)).status).toBe(401);
      expect((await api(first.adminUrl, 'GET', '/v1/environments', undefined, `${token}x`)).status).toBe(401);
    } finally {
      first.child.kill('SIGTERM');
      await first.exited;
    }

    const token = readFileSync(file, 'utf8').trim();
    const second = await serve(config, { EGRESS_ADMIN_TOKEN: '' });
    try {
      expect(readFileSync(file, 'utf8').trim()).toBe(token);
      expect(second.output()).not.toMatch(/admin token generated/);
      expect(second.output()).not.toContain(token);
      expect((await api(second.adminUrl, 'GET', '/v1/environments', undefined, token)).status).toBe(200);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('$EGRESS_ADMIN_TOKEN wins over generation, and nothing is written', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, noToken);
    const served = await serve(config, { EGRESS_ADMIN_TOKEN: 'token-from-the-environment-0123' });
    try {
      expect((await api(served.adminUrl, 'GET', '/v1/environments', undefined, 'token-from-the-environment-0123')).status).toBe(200);
      expect((await api(served.adminUrl, 'GET', '/v1/environments', undefined, 'test-admin-token-0123456789')).status).toBe(401);
      expect(existsSync(join(dir, 'state', 'admin-token'))).toBe(false);
      expect(served.output()).not.toContain('token-from-the-environment-0123');
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
    }
  });

  it('admin.token from the config file is used as written', async () => {
    const dir = tempDir();
    const served = await serve(writeConfig(dir, {}), { EGRESS_ADMIN_TOKEN: '' });
    try {
      expect((await api(served.adminUrl, 'GET', '/v1/environments')).status).toBe(200);
      expect(existsSync(join(dir, 'state', 'admin-token'))).toBe(false);
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
    }
  });
});
