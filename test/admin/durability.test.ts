// Changes made through the API survive a restart and a crash: a storm of PUTs ended by
// SIGKILL leaves every state file whole, the environment equal to an acknowledged version
// (or the one in flight), and a process that starts again and serves.

import { describe, expect, it } from 'vitest';
import { linkSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validateEnvironment } from '../../src/policy/environment.js';
import { parseSessionFile } from '../../src/state/sessions.js';
import { api } from '../helpers/admin.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir, writeConfig } from '../helpers/gate.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { serve } from '../helpers/serve.js';
import { startHttpUpstream } from '../helpers/upstream.js';

describe('durable state', () => {
  it('a restart keeps environments and sessions', async () => {
    const upstream = await startHttpUpstream();
    const dir = tempDir();
    const config = writeConfig(dir, { auth: { required: true }, upstream: { resolve: { 'api.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } });
    const first = await serve(config);
    await api(first.adminUrl, 'PUT', '/v1/environments/kept', { access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [upstream.port] });
    const session = (await api(first.adminUrl, 'POST', '/v1/sessions', { environment: 'kept' })).body;
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const second = await serve(config);
    expect((await api(second.adminUrl, 'GET', '/v1/environments/kept')).body.allowedDomains).toEqual(['api.example.com']);
    expect((await rawConnect(second.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
    second.child.kill('SIGTERM');
    await second.exited;
    await upstream.close();
  });

  it('a replaced policy file leaves no second name behind, and one a crash left is removed at start', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, {});
    const first = await serve(config);
    for (let i = 0; i < 5; i++) expect((await api(first.adminUrl, 'PUT', '/v1/environments/kept', { access: 'custom', allowedDomains: [`v${i}.example.com`] })).status).toBeLessThan(300);
    const session = (await api(first.adminUrl, 'POST', '/v1/sessions', { environment: 'kept' })).body as { id: string };
    const envDir = join(dir, 'state', 'environments');
    const sessionDir = join(dir, 'state', 'sessions');
    const hidden = (): string[] => [...readdirSync(envDir), ...readdirSync(sessionDir)].filter((name) => name.startsWith('.'));
    // Each write gives the file it replaces a second name and removes it once the new file is durable.
    await eventually(() => hidden().length === 0, 5_000);
    expect(readdirSync(envDir)).toEqual(['kept.yaml']);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // What a crash between the rename and that removal leaves: a second name of the replaced file.
    linkSync(join(envDir, 'kept.yaml'), join(envDir, '.kept.yaml.0123456789ab.old'));
    linkSync(join(sessionDir, `${session.id}.json`), join(sessionDir, `.${session.id}.json.0123456789ab.old`));
    expect(hidden()).toHaveLength(2);

    const second = await serve(config);
    await eventually(() => hidden().length === 0, 5_000);
    expect((await api(second.adminUrl, 'GET', '/v1/environments/kept')).body.allowedDomains).toEqual(['v4.example.com']);
    expect((await api(second.adminUrl, 'GET', `/v1/sessions/${session.id}`)).status).toBe(200);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('a storm of PUTs ended by SIGKILL leaves whole, valid files and an acknowledged state', async () => {
    const dir = tempDir();
    const config = writeConfig(dir, {});
    const first = await serve(config);
    const acknowledged: number[] = [];
    const sessions: { id: string; token: string }[] = [];
    let stop = false;
    const writers = [0, 1, 2, 3].map(async (lane) => {
      for (let i = 0; !stop && i < 2_000; i++) {
        const version = lane * 10_000 + i;
        try {
          const answer = await api(first.adminUrl, 'PUT', '/v1/environments/storm', { access: 'custom', allowedDomains: [`v${version}.example.com`] });
          if (answer.status === 200 || answer.status === 201) acknowledged.push(version);
        } catch {
          return; // the process is gone
        }
        try {
          await api(first.adminUrl, 'PUT', `/v1/environments/lane-${lane}-${i % 5}`, { access: 'trusted', name: `lane ${lane} #${i}` });
          const session = await api(first.adminUrl, 'POST', '/v1/sessions', { environment: 'storm' });
          if (session.status === 201) sessions.push(session.body);
          if (i % 3 === 0 && sessions.length > 1) await api(first.adminUrl, 'DELETE', `/v1/sessions/${sessions.shift()!.id}`);
        } catch {
          return;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1_500));
    first.child.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await first.exited;
    expect(acknowledged.length).toBeGreaterThan(5);

    const envDir = join(dir, 'state', 'environments');
    for (const name of readdirSync(envDir)) {
      if (name.startsWith('.')) continue; // a temporary file of the write that was cut: never read
      const parsed = validateEnvironment(parse(readFileSync(join(envDir, name), 'utf8')), name.replace(/\.yaml$/, ''));
      expect(parsed.ok, name).toBe(true);
    }
    const sessionDir = join(dir, 'state', 'sessions');
    const sessionFiles = readdirSync(sessionDir).filter((name) => !name.startsWith('.'));
    expect(sessionFiles.length).toBeGreaterThan(0);
    for (const name of sessionFiles) {
      const parsed = parseSessionFile(JSON.parse(readFileSync(join(sessionDir, name), 'utf8')));
      expect(typeof parsed, name).toBe('object');
    }
    const onDisk = parse(readFileSync(join(envDir, 'storm.yaml'), 'utf8')) as { allowedDomains: string[] };
    const version = Number(/^v(\d+)\./.exec(onDisk.allowedDomains[0]!)![1]);
    // Either the last write acknowledged (writes to one environment are serialised, so the last
    // acknowledgement is the last write) or a write that was in flight when the process died:
    // at most one per lane, the one after that lane's last acknowledged write.
    const lanes = [0, 1, 2, 3].map((lane) => acknowledged.filter((v) => Math.floor(v / 10_000) === lane));
    const inFlight = lanes.map((done, lane) => (done.length ? Math.max(...done) + 1 : lane * 10_000));
    expect([acknowledged.at(-1), ...inFlight]).toContain(version);

    const second = await serve(config);
    expect((await api(second.adminUrl, 'GET', '/v1/environments/storm')).body.allowedDomains).toEqual(onDisk.allowedDomains);
    // Every session acknowledged and not revoked before the kill is still there.
    // (A revocation in flight at the kill was taken off the list before it was sent.)
    for (const session of sessions) expect((await api(second.adminUrl, 'GET', `/v1/sessions/${session.id}`)).status).toBe(200);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
