// Profiles egress-gate under the plain-HTTP forward workload: writes a .cpuprofile and prints
// the functions with the most self time. `node bench/profile.js [seconds]`
import autocannon from 'autocannon';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEgressGate, startUpstreams } from './lib/procs.js';

const seconds = Number(process.argv[2] ?? 6);
const up = await startUpstreams();
const dir = mkdtempSync(join(tmpdir(), 'egress-prof-'));
const gate = await startEgressGate({ ports: [up.http] }, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
const proxyPort = gate.port;
const result = await autocannon({ url: `http://127.0.0.1:${proxyPort}`, connections: 50, duration: seconds, requests: [{ path: `http://bench.test:${up.http}/`, headers: { host: `bench.test:${up.http}` } }] });
console.log(`req/s ${Math.round(result.requests.average)}, p99 ${result.latency.p99} ms`);
await gate.stop();
await up.stop();
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
profile.samples.forEach((id, i) => {
  const frame = byId.get(id).callFrame;
  const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/')}:${frame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
console.log(`profile: ${join(dir, file)}`);
