// Squid and tinyproxy from Debian's packages, when installed, configured to allow everything:
// what an operator would run instead. Never required; `--peers` only.
// Each writes its access log to a file, as Debian's configuration has it (Squid through its
// log daemon, tinyproxy at LogLevel Info), as egress-gate writes its decision log: an egress
// proxy is run for that record. `logs: false` runs them silent (`--quiet-peers`), as the
// bench did before (docs/performance.md).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './procs.js';

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/** A log file the peer can write once it drops root for its own user. */
function logFile(dir, name) {
  const file = join(dir, name);
  writeFileSync(file, '', { mode: 0o666 });
  chmodSync(file, 0o666);
  return file;
}

export async function startPeers({ logs = true } = {}) {
  const peers = [];
  const dir = mkdtempSync(join(tmpdir(), 'egress-peers-'));
  chmodSync(dir, 0o755);
  // The logs run to tens of MB a run.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  if (has('squid')) {
    const port = await freePort();
    const conf = join(dir, 'squid.conf');
    const log = logs ? logFile(dir, 'squid-access.log') : undefined;
    writeFileSync(conf, [`http_port 127.0.0.1:${port}`, 'http_access allow all', 'acl SSL_ports port 1-65535', 'acl CONNECT method CONNECT', 'cache deny all', `pid_filename ${join(dir, 'squid.pid')}`, log ? `access_log daemon:${log} squid` : 'access_log none', 'cache_log /dev/null', 'shutdown_lifetime 0 seconds', 'max_filedescriptors 20000', ''].join('\n'));
    const child = spawn('squid', ['-N', '-f', conf], { stdio: 'ignore' });
    await wait(1_500);
    peers.push({ name: 'squid', port, pid: child.pid, log, stop: async () => child.kill('SIGKILL') });
  }
  if (has('tinyproxy')) {
    const port = await freePort();
    const conf = join(dir, 'tinyproxy.conf');
    // No ConnectPort line: tinyproxy then allows CONNECT to every port.
    const log = logs ? logFile(dir, 'tinyproxy.log') : undefined;
    const logLines = log ? [`LogFile "${log}"`, 'LogLevel Info'] : [];
    writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 600', 'MaxClients 10000', ...logLines, ''].join('\n'));
    const child = spawn('tinyproxy', ['-d', '-c', conf], { stdio: 'ignore' });
    await wait(1_000);
    peers.push({ name: 'tinyproxy', port, pid: child.pid, log, stop: async () => child.kill('SIGKILL') });
  }
  return peers;
}
