// CPU time the proxy itself spends per forwarded request, per 100 MB through a tunnel and per
// tunnel setup, egress-gate against the bare pass-through proxy. On two shared cores requests
// per second swing with whatever else runs; the proxy's own user+system time per unit of work
// (from /proc) swings much less, so this is the figure to compare before and after a change.
// The proxy is pinned to the second core and the load generator and upstreams to the first.
// `--peers` adds Squid and tinyproxy when installed (bench/lib/peers.js), each with its access
// log as Debian ships it; `--quiet-peers`, with none. A proxy's figure counts its child
// processes too (Squid writes its log through one).
//   node bench/cpu.js [--requests 40000] [--runs 5] [--peers] [--quiet-peers]
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bulk, tunnelSetup } from './lib/clients.js';
import { startBare, startEgressGate, startUpstreams } from './lib/procs.js';
import { startPeers } from './lib/peers.js';
import { median } from './lib/stats.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '40000' }, runs: { type: 'string', default: '5' }, peers: { type: 'boolean', default: false }, 'quiet-peers': { type: 'boolean', default: false } } });
const requests = Number(values.requests);
const runs = Number(values.runs);

/** A process and its descendants. */
function processTree(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // Gone, or a kernel without the children file: the process alone.
  }
  return [pid, ...children.flatMap(processTree)];
}

/** User + system CPU milliseconds of a process and its descendants so far (clock ticks of 10 ms). */
function cpuMs(pid) {
  let total = 0;
  for (const id of processTree(pid)) {
    const fields = readFileSync(`/proc/${id}/stat`, 'utf8').split(') ')[1].split(' ');
    total += (Number(fields[11]) + Number(fields[12])) * 10;
  }
  return total;
}

/** Pins `pid`'s threads to `core`, and with `tree` its child processes' too. */
function pin(pid, core, { tree = true } = {}) {
  try {
    for (const id of tree ? processTree(pid) : [pid]) execFileSync('taskset', ['-a', '-cp', String(core), String(id)], { stdio: 'ignore' });
  } catch {
    // No taskset: the figures are noisier, not wrong.
  }
}

const up = await startUpstreams();
const bare = await startBare();
const gate = await startEgressGate({ ports: [up.http, up.https, up.bulk] });
const subjects = [
  { name: 'bare', port: bare.port, host: '127.0.0.1', pid: bare.pid },
  { name: 'egress-gate', port: gate.port, host: 'bench.test', pid: gate.pid },
];
const peers = values.peers || values['quiet-peers'] ? await startPeers({ logs: !values['quiet-peers'] }) : [];
subjects.push(...peers.map((p) => ({ ...p, host: '127.0.0.1' })));
// This process without its tree: the proxies are its children, and go to the other core.
pin(process.pid, 0, { tree: false });
pin(up.pid, 0);
for (const s of subjects) pin(s.pid, 1);

const figures = {};
for (const s of subjects) {
  const load = { url: `http://127.0.0.1:${s.port}`, connections: 50, requests: [{ path: `http://${s.host}:${up.http}/`, headers: { host: `${s.host}:${up.http}` } }] };
  await autocannon({ ...load, amount: 5_000 }); // warm-up
  const perRequest = [];
  for (let i = 0; i < runs; i++) {
    const before = cpuMs(s.pid);
    await autocannon({ ...load, amount: requests });
    perRequest.push(((cpuMs(s.pid) - before) * 1000) / requests);
  }
  const perHundredMB = [];
  for (let i = 0; i < Math.min(runs, 3); i++) {
    const before = cpuMs(s.pid);
    const { mbPerSecond } = await bulk({ proxyPort: s.port, host: s.host, port: up.bulk, tunnels: 1, seconds: 3 });
    // bulk() counts 3 s after a 0.5 s warm-up; the CPU covers both.
    perHundredMB.push(((cpuMs(s.pid) - before) / (mbPerSecond * 3.5)) * 100);
  }
  // CONNECT + TLS handshake + one request, as the main bench's setup workload. The handshakes'
  // crypto runs on the other core, in the client and the upstream; this is the proxy's share.
  await tunnelSetup({ proxyPort: s.port, host: s.host, port: up.https, concurrency: 16, seconds: 1 }); // warm-up
  const perSetup = [];
  for (let i = 0; i < runs; i++) {
    const before = cpuMs(s.pid);
    const { perSecond } = await tunnelSetup({ proxyPort: s.port, host: s.host, port: up.https, concurrency: 16, seconds: 3 });
    perSetup.push(((cpuMs(s.pid) - before) * 1000) / (perSecond * 3));
  }
  figures[s.name] = { perRequest: median(perRequest), perHundredMB: median(perHundredMB), perSetup: median(perSetup) };
}
await Promise.all([up.stop(), bare.stop(), gate.stop(), ...peers.map((p) => p.stop())]);

const cell = (name, key) => `${figures[name][key].toFixed(0)} (${(figures[name][key] / figures.bare[key]).toFixed(2)} × bare)`;
console.log('| proxy | CPU µs per forwarded request | CPU ms per 100 MB through a tunnel | CPU µs per tunnel setup |');
console.log('| --- | --- | --- | --- |');
for (const name of Object.keys(figures)) console.log(`| ${name} | ${cell(name, 'perRequest')} | ${cell(name, 'perHundredMB')} | ${cell(name, 'perSetup')} |`);
