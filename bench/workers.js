// Scale-out on one machine: plain-HTTP forward requests/s through egress-gate with
// `workers: 1`, with `workers: 2`, and as two single-process replicas sharing Redis (a load
// balancer stood in for by splitting the client connections), each against the same upstream
// in the same run. Medians of --runs runs, with min-max.
//   node bench/workers.js [--seconds 8] [--runs 3] [--connections 100]
// Needs `npm run build` and, for the Redis row, redis-server on the PATH.

import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, root, startEgressGate } from './lib/procs.js';
import { spread } from './lib/stats.js';

const startGate = (extra) => startEgressGate({ ports: [upstreamPort], ...extra });
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, runs: { type: 'string', default: '3' }, connections: { type: 'string', default: '100' } } });
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const connections = Number(values.connections);

const body = Buffer.alloc(1024, 'x');
const upstream = createServer((req, res) => res.end(body));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamPort = upstream.address().port;

function load(proxyPorts) {
  // Split the connections across the proxies: each autocannon instance is one "balancer lane".
  const per = Math.ceil(connections / proxyPorts.length);
  return Promise.all(
    proxyPorts.map(
      (port) =>
        new Promise((resolveRun, reject) =>
          autocannon(
            { url: `http://127.0.0.1:${port}`, connections: per, duration: seconds, requests: [{ method: 'GET', path: `http://bench.test:${upstreamPort}/`, headers: { host: `bench.test:${upstreamPort}` } }] },
            (error, result) => (error ? reject(error) : resolveRun(result)),
          ),
        ),
    ),
  ).then((results) => ({ rps: results.reduce((sum, r) => sum + r.requests.average, 0), errors: results.reduce((sum, r) => sum + r.errors + r.non2xx, 0) }));
}

async function measure(name, start) {
  const samples = [];
  let errors = 0;
  for (let i = 0; i < runs; i++) {
    const gates = await start();
    const result = await load(gates.map((g) => g.port));
    samples.push(result.rps);
    errors += result.errors;
    await Promise.all(gates.map((g) => g.stop()));
  }
  return { name, ...spread(samples), errors };
}

let redis;
const rows = [];
rows.push(await measure('1 process (workers: 1)', async () => [await startGate({})]));
rows.push(await measure('1 process, workers: 2', async () => [await startGate({ workers: 2 })]));
try {
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const store = { backend: 'redis', redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: `bench${Date.now()}:` } };
  rows.push(await measure('2 replicas on Redis', async () => [await startGate({ store }), await startGate({ store })]));
} catch (error) {
  console.error(`redis row skipped: ${error.message}`);
} finally {
  redis?.kill('SIGKILL');
}
upstream.close();

const base = rows[0].median;
console.log(`\nplain HTTP forward, 1 KiB, ${connections} connections, ${seconds} s x ${runs} runs (median, min-max)\n`);
console.log('| setup | req/s | min-max | ratio to 1 process | errors |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.name} | ${Math.round(r.median)} | ${Math.round(r.min)}-${Math.round(r.max)} | ${(r.median / base).toFixed(2)} | ${r.errors} |`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results', `workers-${Date.now()}.json`), JSON.stringify({ seconds, runs, connections, rows }, null, 2));
