// egress-gate benchmarks: every figure is a median of several runs with its spread, and a
// ratio to the references measured in the same run — `direct` (client straight to the
// upstream) and `bare` (bench/bare-proxy.js, Node's own pass-through). `--peers` adds Squid and
// tinyproxy when installed, each writing its access log as Debian ships it (`--quiet-peers`:
// no log). Prints one markdown table, writes JSON to bench/results/.
//   npm run bench                 (about 6 minutes on 2 cores, 9 with --peers)
//   npm run bench -- --quick      (about 1 minute, one run each)
import autocannon from 'autocannon';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bulk, holdIdle, tunnelSetup } from './lib/clients.js';
import { root, rssKiB, startBare, startEgressGate, startUpstreams } from './lib/procs.js';
import { policyFigures } from './lib/policy.js';
import { median, spread } from './lib/stats.js';
import { policyChangeFigures } from './lib/policy-change.js';
import { startPeers } from './lib/peers.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, peers: { type: 'boolean', default: false }, 'quiet-peers': { type: 'boolean', default: false }, runs: { type: 'string' } } });
const quick = values.quick;
// Five short rounds rather than three long ones: the median of five is steadier on a noisy
// machine (it drops the two worst rounds), for about the same time.
const runs = Number(values.runs ?? (quick ? 1 : 5));
const seconds = quick ? 3 : 4;
const idleTunnels = quick ? 1_000 : 9_000; // the machine's hard limit of 20 000 fds per process bounds this

const fmt = (n, digits = 0) => (n === undefined || Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

function cannon(url, path, host, connections, duration = seconds) {
  return new Promise((resolve, reject) =>
    autocannon({ url, connections, duration, requests: [{ method: 'GET', path, headers: { host } }] }, (error, result) =>
      error ? reject(error) : resolve({ rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }),
    ),
  );
}

const up = await startUpstreams();
const bare = await startBare();
const gate = await startEgressGate({ ports: [up.http, up.https, up.bulk, up.hold] });
const subjects = [
  { name: 'direct', port: null, host: '127.0.0.1' },
  { name: 'bare', port: bare.port, host: '127.0.0.1', pid: bare.pid },
  { name: 'egress-gate', port: gate.port, host: 'bench.test', pid: gate.pid },
];
const peers = values.peers || values['quiet-peers'] ? await startPeers({ logs: !values['quiet-peers'] }) : [];
subjects.push(...peers.map((p) => ({ ...p, host: '127.0.0.1' })));

const results = { machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, runs, seconds, rows: {} };
const record = (workload, subject, figures) => ((results.rows[workload] ??= {})[subject] = figures);

/**
 * `runs` rounds of one workload, each round measuring every subject once: the machine's load
 * drifts over minutes, and rounds spread that drift over all subjects instead of handing it to
 * whichever ran last (a subject's runs back to back put bare and egress-gate up to a
 * third apart on one workload, in either direction). Each round starts one subject further
 * down the list, so no subject always runs right after the same other one.
 * Every figure also keeps its runs, and its ratio to bare within each round ("paired"): the
 * rounds of one subject differ by up to a fifth on this machine, and a round's ratio cancels
 * what the two runs beside each other shared.
 */
async function inRounds(workload, measure) {
  const samples = new Map(subjects.map((s) => [s.name, []]));
  // Which subject opens the first round is drawn for each workload. With a fixed start, the same
  // subject always took the same moment of a run, and something on this machine is tied to the
  // moment: over 25 runs, egress-gate's tunnel-setup ratio in the fourth round, always the last
  // minutes of the workload, averaged 0.85 against 0.93-1.00 in the others (docs/performance.md).
  const start = Math.floor(Math.random() * subjects.length);
  const orders = [];
  for (let i = 0; i < runs; i++) {
    const order = subjects.map((_, k) => subjects[(start + i + k) % subjects.length]);
    orders.push(order.map((s) => s.name));
    for (const s of order) samples.get(s.name).push(await measure(s));
  }
  (results.orders ??= {})[workload] = orders;
  const bareRuns = samples.get('bare');
  for (const [name, list] of samples) {
    const keys = Object.keys(list[0]);
    // Only where bare has a figure in every round (not for error counts, which are mostly 0).
    const paired = (k) => (bareRuns.every((b) => b[k] > 0) ? { pairedRatio: median(list.map((x, i) => x[k] / bareRuns[i][k])) } : {});
    record(workload, name, Object.fromEntries(keys.map((k) => [k, { ...spread(list.map((x) => x[k])), ...paired(k), runs: list.map((x) => x[k]) }])));
  }
}

const forward = (s, connections, duration) => {
  const url = `http://127.0.0.1:${s.port ?? up.http}`;
  const path = s.port === null ? '/' : `http://${s.host}:${up.http}/`;
  return cannon(url, path, `${s.host}:${up.http}`, connections, duration);
};
// A warm-up, not recorded: the first seconds of a Node process are its JIT compiling the hot
// path (and egress-gate loading its HTTP client at the first request), which would otherwise
// fall on the first round alone.
for (const s of subjects) await forward(s, 50, quick ? 1 : 3);
for (const connections of [50, 200]) await inRounds(`http forward 1 KiB, ${connections} conns`, (s) => forward(s, connections));
const setup = (s, duration) => tunnelSetup({ proxyPort: s.port, host: s.host, port: up.https, concurrency: 16, seconds: duration });
for (const s of subjects) await setup(s, 1); // the CONNECT path's own warm-up
await inRounds('CONNECT + TLS + 1 request', (s) => setup(s, seconds));
for (const tunnels of [1, 8]) {
  // Rounds of 3 s: a tunnel's throughput settles within a second, and this keeps a run with
  // --peers under ten minutes.
  await inRounds(`bulk tunnel, ${tunnels} tunnel${tunnels > 1 ? 's' : ''}`, (s) => bulk({ proxyPort: s.port, host: s.host, port: up.bulk, tunnels, seconds: Math.min(seconds, 3) }));
}
/** RSS growth of a proxy process while `idleTunnels` tunnels open and sit idle, per tunnel. */
async function idleTunnelFigures(s) {
  const before = rssKiB(s.pid);
  const held = await holdIdle({ proxyPort: s.port, host: s.host, port: up.hold, count: idleTunnels });
  await new Promise((r) => setTimeout(r, 1_000));
  const after = rssKiB(s.pid);
  held.close();
  await new Promise((r) => setTimeout(r, 1_000));
  return { tunnels: spread([held.sockets.length]), rssMiB: spread([after / 1024]), kibPerTunnel: spread([(after - before) / Math.max(1, held.sockets.length)]) };
}
// Twice. On processes that ran the workloads above, the figure counts only the memory the
// process had to take anew: a process that freed more heap earlier reuses it for the tunnels
// and looks lighter (bare measured 3.7-8.5 KiB per tunnel this way, 11 on a fresh process).
// So bare and egress-gate are also measured fresh, started for this workload alone.
for (const s of subjects.filter((x) => x.pid)) record(`${idleTunnels} idle tunnels, after the workloads above`, s.name, await idleTunnelFigures(s));
const freshStarts = { bare: [startBare, '127.0.0.1'], 'egress-gate': [() => startEgressGate({ ports: [up.hold] }), 'bench.test'] };
for (const [name, [start, host]] of Object.entries(freshStarts)) {
  const fresh = await start();
  record(`${idleTunnels} idle tunnels, fresh process`, name, await idleTunnelFigures({ port: fresh.port, host, pid: fresh.pid }));
  await fresh.stop();
}

// Policy changes under load (bench/lib/policy-change.js): the first PUT of 100 000 entries,
// then one-entry changes to it; no request may fail.
record('policy change, 100 000 entries, under load', 'egress-gate', await policyChangeFigures({ gate, up, seconds }));
// What the peers logged, so a run shows they did (a peer that cannot write its file logs nothing).
results.peerLogBytes = Object.fromEntries(peers.filter((p) => p.log).map((p) => [p.name, statSync(p.log).size]));
await Promise.all([up.stop(), bare.stop(), gate.stop(), ...peers.map((p) => p.stop())]);
// In this process, once every other has stopped: at 100 000 entries a lookup is a few cache
// misses, and a busy neighbour shares the caches.
results.rows['policy lookup'] = { 'egress-gate': await policyFigures(quick) };

// The table: figures for egress-gate with ratios to bare and direct of the same run.
const lines = [`egress-gate benchmarks — ${results.machine.cpus} × ${results.machine.model}, Node ${results.machine.node}, ${runs} run(s) of ${seconds} s, median (min–max)`, ''];
lines.push('| workload | subject | figure | median (min–max) | ÷ bare | ÷ bare, paired | ÷ direct |', '| --- | --- | --- | --- | --- | --- | --- |');
for (const [workload, bySubject] of Object.entries(results.rows)) {
  for (const [subject, figures] of Object.entries(bySubject)) {
    for (const [figure, v] of Object.entries(figures)) {
      const ratio = (ref) => {
        const r = bySubject[ref]?.[figure]?.median;
        return r ? (v.median / r).toFixed(2) : '–';
      };
      const digits = v.median < 10 ? 2 : 0;
      lines.push(`| ${workload} | ${subject} | ${figure} | ${fmt(v.median, digits)} (${fmt(v.min, digits)}–${fmt(v.max, digits)}) | ${ratio('bare')} | ${v.pairedRatio === undefined ? '–' : v.pairedRatio.toFixed(2)} | ${ratio('direct')} |`);
    }
  }
}
console.log(lines.join('\n'));
mkdirSync(join(root, 'bench/results'), { recursive: true });
const file = join(root, 'bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
console.log(`\nJSON: ${file}`);
