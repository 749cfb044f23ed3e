// Child processes for the benchmark: upstreams, the bare reference proxy, egress-gate itself.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const adminToken = 'bench-admin-token-0123456789';

export async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Spawns `node args`, resolves with the child and its first stdout line. */
export function spawnNode(args, { quiet = false } = {}) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const onData = (c) => {
      out += c.toString();
      const line = out.indexOf('\n');
      if (line >= 0) {
        child.stdout.off('data', onData);
        // Keep draining: a full pipe would block the child's writes.
        child.stdout.on('data', () => {});
        resolveStart({ child, line: out.slice(0, line), stop: () => stop(child) });
      }
    };
    child.stdout.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)));
    void quiet;
  });
}

function stop(child) {
  return new Promise((r) => {
    if (child.exitCode !== null) return r();
    child.once('exit', r);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
  });
}

export async function startUpstreams() {
  const started = await spawnNode([join(root, 'bench/lib/upstreams.js')]);
  return { ...JSON.parse(started.line), pid: started.child.pid, stop: started.stop };
}

export async function startBare() {
  const started = await spawnNode([join(root, 'bench/bare-proxy.js'), '0']);
  return { port: Number(started.line.split(' ')[1]), pid: started.child.pid, stop: started.stop };
}

/**
 * egress-gate on its production path: a session-less default environment, its log (stdout)
 * in a file of its temporary folder.
 * `nodeArgs` go to node itself (`--cpu-prof`, say).
 */
export async function startEgressGate(extraConfig = {}, { nodeArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'egress-bench-'));
  mkdirSync(join(dir, 'state'), { recursive: true });
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const config = {
    proxy: { listen: `127.0.0.1:${proxyPort}`, maxConnections: 100_000 },
    admin: { listen: `127.0.0.1:${adminPort}`, token: adminToken },
    stateDir: join(dir, 'state'),
    defaults: { allowlist: join(root, 'allowlists/default.yaml') },
    upstream: { resolve: { 'bench.test': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] },
    limits: { requestsPerSecond: 1_000_000, burst: 1_000_000, maxConnections: 100_000 },
    environments: [{ id: 'default', access: 'custom', includeDefaults: true, allowedDomains: ['bench.test', '*.bench.test'], allowedPorts: [80, 443, ...(extraConfig.ports ?? [])] }],
  };
  delete extraConfig.ports;
  const file = join(dir, 'egress.yaml');
  writeFileSync(file, stringify({ ...config, ...extraConfig }));
  // The log goes to a file, as an operator's collector would take it: read through a pipe by
  // this process, which also runs the load generator, lines backed up in egress-gate's memory.
  const logFile = join(dir, 'egress.log');
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'dist/cli.js'), 'serve', '--config', file], { stdio: ['ignore', log, 'inherit'] });
  closeSync(log);
  const exited = new Promise((r) => child.once('exit', r));
  for (let i = 0; !readFileSync(logFile, 'utf8').includes('egress-gate listening'); i++) {
    if (child.exitCode !== null || i > 200) throw new Error(`egress-gate did not start: ${readFileSync(logFile, 'utf8')}`);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
  }
  return { port: proxyPort, adminUrl: `http://127.0.0.1:${adminPort}`, pid: child.pid, log: logFile, stop: () => stop(child) };
}

export function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}
