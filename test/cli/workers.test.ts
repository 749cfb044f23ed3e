// `serve` with `workers: 2` as a supervisor sees it: a gate that cannot start exits non-zero
// (so `Restart=on-failure` and Kubernetes see the failure), and workers that crash after they
// started are replaced, even when every one of them dies at once.

import { afterAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { adminToken, api } from '../helpers/admin.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir, writeConfig } from '../helpers/gate.js';
import { listeningWorkers, serveWorkers, type Served } from '../helpers/serve.js';
import { egressGate } from './cli.js';

describe('serve with workers: 2', () => {
  let holder: Server | undefined;
  let served: Served | undefined;
  afterAll(async () => {
    served?.child.kill('SIGTERM');
    await served?.exited;
    await new Promise((r) => (holder ? holder.close(r) : r(undefined)));
  });

  it('exits 2 when the workers cannot bind the proxy port, and says why', async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder!.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as { port: number }).port;
    const file = writeConfig(tempDir(), { workers: 2, proxy: { listen: `127.0.0.1:${taken}` }, admin: { listen: '127.0.0.1:0', token: adminToken } });
    const result = await egressGate(['serve', '--config', file]);
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(2);
    expect(output).toContain('EADDRINUSE');
    expect(output).toContain('no worker serves; stopping');
  });

  it('replaces workers that crash after they started, even all of them at once', async () => {
    served = await serveWorkers(2, {});
    const first = await listeningWorkers(served, 2);
    for (const pid of first) process.kill(Number(pid), 'SIGKILL');
    const all = await listeningWorkers(served, 4);
    expect(new Set(all).size).toBe(4);
    expect(served.output()).toContain('worker exited; starting another');
    expect(served.child.exitCode).toBeNull();
    expect((await api(served.adminUrl, 'GET', '/healthz', undefined, null)).status).toBe(200);
    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
  });

  it('keeps serving when a replacement cannot start, and tries again until one does', async () => {
    served = await serveWorkers(2, {});
    const configFile = /"config":"([^"]+)"/.exec(served.output())![1] as string;
    const good = readFileSync(configFile, 'utf8');
    writeFileSync(configFile, `${good}\nbogus: 1\n`);
    const [victim] = await listeningWorkers(served, 2);
    process.kill(Number(victim), 'SIGKILL');
    await eventually(() => served!.output().includes('exited before it listened; starting another later'), 5_000);
    expect(served.output()).toContain('exited before it listened; starting another later');
    expect(served.output()).toContain('bogus: unknown key');
    expect((await api(served.adminUrl, 'GET', '/healthz', undefined, null)).status).toBe(200);
    writeFileSync(configFile, good);
    expect(new Set(await listeningWorkers(served, 3)).size).toBe(3);
    expect(served.child.exitCode).toBeNull();
  });
});
