// Squid and tinyproxy from Debian's packages, when installed, configured to allow everything:
// what an operator would run instead. Never required; `--peers` only.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './procs.js';

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startPeers() {
  const peers = [];
  const dir = mkdtempSync(join(tmpdir(), 'egress-peers-'));
  if (has('squid')) {
    const port = await freePort();
    const conf = join(dir, 'squid.conf');
    writeFileSync(conf, [`http_port 127.0.0.1:${port}`, 'http_access allow all', 'acl SSL_ports port 1-65535', 'acl CONNECT method CONNECT', 'cache deny all', `pid_filename ${join(dir, 'squid.pid')}`, 'access_log none', 'cache_log /dev/null', 'shutdown_lifetime 0 seconds', 'max_filedescriptors 20000', ''].join('\n'));
    const child = spawn('squid', ['-N', '-f', conf], { stdio: 'ignore' });
    await wait(1_500);
    peers.push({ name: 'squid', port, pid: child.pid, stop: async () => child.kill('SIGKILL') });
  }
  if (has('tinyproxy')) {
    const port = await freePort();
    const conf = join(dir, 'tinyproxy.conf');
    // No ConnectPort line: tinyproxy then allows CONNECT to every port.
    writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 600', 'MaxClients 10000', ''].join('\n'));
    const child = spawn('tinyproxy', ['-d', '-c', conf], { stdio: 'ignore' });
    await wait(1_000);
    peers.push({ name: 'tinyproxy', port, pid: child.pid, stop: async () => child.kill('SIGKILL') });
  }
  return peers;
}
