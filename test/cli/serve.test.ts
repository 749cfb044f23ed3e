// The real command: `egress-gate serve` as a child process, `validate` on good and bad files.

import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { repoRoot, tempDir, writeConfig } from '../helpers/gate.js';
import { cleanEnv } from '../helpers/run.js';
import { startHttpUpstream } from '../helpers/upstream.js';
import { cliPath, egressGate } from './cli.js';

describe('egress-gate validate', () => {
  it('accepts the embedded default config', async () => {
    const dir = tempDir();
    const result = await egressGate(['validate'], { EGRESS_CONFIG: join(repoRoot, 'config/egress.yaml') });
    expect(result.code, result.stderr).toBe(0);
    void dir;
  });

  it('reports every error with file and key path, exit 1', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, { proxy: { listen: 'nowhere', bogus: 1 }, auth: { required: 'yes' }, upstream: { allowPrivateNetworks: ['10.0.0.0/33'] } });
    const result = await egressGate(['validate', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: proxy.listen:`);
    expect(result.stderr).toContain(`${file}: proxy.bogus: unknown key`);
    expect(result.stderr).toContain(`${file}: auth.required: expected true or false`);
    expect(result.stderr).toContain(`${file}: upstream.allowPrivateNetworks[0]:`);
  });

  it('reports a bad environment file with its path and the pattern', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, {});
    mkdirSync(join(dir, 'state', 'environments'), { recursive: true });
    const envFile = join(dir, 'state', 'environments', 'web.yaml');
    writeFileSync(envFile, 'id: web\naccess: custom\nallowedDomains: [ok.example.com, "a.*.com", "*.com"]\n');
    const result = await egressGate(['validate', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${envFile}: allowedDomains[1]:`);
    expect(result.stderr).toContain('a.*.com');
    expect(result.stderr).toContain(`${envFile}: allowedDomains[2]:`);
  });
});

describe('egress-gate serve', () => {
  it('serves, and on SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const upstream = await startHttpUpstream();
    const dir = tempDir();
    const file = writeConfig(dir, { upstream: { resolve: { 'registry.npmjs.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } }, [{ id: 'default', access: 'trusted', allowedPorts: [upstream.port] }]);
    const child = spawn(process.execPath, [cliPath, 'serve', '--config', file], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 15_000);
      const poll = setInterval(() => {
        const match = /"proxy":"127\.0\.0\.1:(\d+)"/.exec(out);
        if (match) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      }, 50);
    });
    // A 16 MiB download in flight when SIGTERM arrives must still complete.
    const size = 16 * 1024 * 1024;
    const download = new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: `http://registry.npmjs.org:${upstream.port}/bytes/${size}`, headers: { host: `registry.npmjs.org:${upstream.port}` } }, (res) => {
        let bytes = 0;
        res.once('data', () => child.kill('SIGTERM'));
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve(bytes));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(await download).toBe(size);
    expect(await exit).toBe(0);
    expect(out).toContain('"msg":"draining"');
    await upstream.close();
  });

  it('refuses to start on an invalid config, naming the key', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, { limits: { burst: -1 } });
    const result = await egressGate(['serve', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('limits.burst');
  });

  // A performance property (docs/decisions.md, "Dependencies loaded at first use"): these
  // libraries are megabytes of heap that every garbage collection of a busy tunnel walks.
  // undici's agent comes with the first forwarded plain-HTTP request, and none is made here.
  it('without inspection or Redis, never loads node-forge or ioredis, nor undici before a forwarded request', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, { proxy: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } });
    const report = `import { createRequire } from 'node:module';
      setTimeout(() => {
        const loaded = Object.keys(createRequire(process.cwd() + '/').cache);
        process.stderr.write('LOADED ' + JSON.stringify({ forge: loaded.some((f) => f.includes('/node-forge/')), ioredis: loaded.some((f) => f.includes('/ioredis/')), undici: loaded.some((f) => f.includes('/undici/')), pino: loaded.some((f) => f.includes('/pino/')) }) + '\\n');
        process.kill(process.pid, 'SIGTERM');
      }, 1_500);`;
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(report)}`, cliPath, 'serve', '--config', file], { env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, out).toBe(0);
    expect(out).toContain('egress-gate listening');
    // pino, loaded as CommonJS like the other two, shows the check sees what is loaded.
    expect(JSON.parse(/LOADED (.*)/.exec(out)?.[1] ?? '{}')).toEqual({ forge: false, ioredis: false, undici: false, pino: true });
  });
});
