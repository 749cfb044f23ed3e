// Cost of the limiter per request, memory backend: what Limits.take() adds to a request, as
// nanoseconds per operation (median of several runs) and as a ratio to the bare
// rate-limiter-flexible consume() it wraps, measured in the same run.
//
//   npm run build && node bench/limiter.js [--ops N] [--runs R]
//
// Prints a table and writes bench/results/limiter.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { Limits } from '../dist/limits.js';
import { compileEnvironment } from '../dist/policy/decide.js';
import { ByteBudget } from '../dist/proxy/throttle.js';
import { median } from './lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const OPS = arg('ops', 100_000);
const RUNS = arg('runs', 7);
/** Distinct sessions the requests rotate over: the buckets' maps hold realistic sizes. */
const SESSIONS = 1_000;
const sessionKeys = Array.from({ length: SESSIONS }, (_, i) => `session-${i}`);

const defaults = { trusted: [], alwaysAllow: [] };
const environment = (rateLimit) =>
  compileEnvironment({ id: 'bench', name: 'bench', access: 'full', allowedDomains: [], includeDefaults: false, deniedDomains: [], archived: false, rateLimit }, defaults);
const limitsConfig = (extra = {}) => ({
  requestsPerSecond: 1_000_000,
  burst: 1_000_000_000,
  maxConnections: 1_000_000,
  perHostRequestsPerSecond: 0,
  perHostBurst: 0,
  environmentRequestsPerSecond: 0,
  environmentBurst: 0,
  bandwidthBytesPerSecond: 0,
  ...extra,
});

const open = environment(undefined);
const tight = environment({ requestsPerSecond: 1, burst: 1 });
const who = (i) => ({ sessionKey: sessionKeys[i % SESSIONS], environment: 'bench', host: `host-${i % 7}.example.com` });

const cases = [
  {
    name: 'reference: RateLimiterMemory.consume',
    setup() {
      const bucket = new RateLimiterMemory({ points: 1_000_000_000, duration: 1_000, keyPrefix: 'ref' });
      return async (i) => {
        await bucket.consume(sessionKeys[i % SESSIONS], 1);
      };
    },
  },
  {
    name: 'take: session bucket, allowed',
    setup() {
      const limits = new Limits(limitsConfig());
      return async (i) => {
        const verdict = await limits.take(who(i), open);
        if (!verdict.ok) throw new Error('unexpected refusal');
      };
    },
  },
  {
    name: 'take: session bucket, refused',
    setup() {
      const limits = new Limits(limitsConfig());
      return async (i) => {
        await limits.take(who(i), tight);
      };
    },
  },
  {
    name: 'take: session + host + environment, allowed',
    setup() {
      const limits = new Limits(limitsConfig({ perHostRequestsPerSecond: 1_000_000, perHostBurst: 1_000_000_000, environmentRequestsPerSecond: 1_000_000, environmentBurst: 1_000_000_000 }));
      return async (i) => {
        const verdict = await limits.take(who(i), open);
        if (!verdict.ok) throw new Error('unexpected refusal');
      };
    },
  },
  {
    name: 'open + release: connection cap',
    setup() {
      const limits = new Limits(limitsConfig());
      return async (i) => {
        (await limits.open(sessionKeys[i % SESSIONS], open)).release?.();
      };
    },
  },
  {
    name: 'ByteBudget.take: one 16 KiB chunk',
    setup() {
      const budget = new ByteBudget(1e15);
      return async () => {
        budget.take(16_384);
      };
    },
  },
];

async function timeRun(op) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) await op(i);
  return Number(process.hrtime.bigint() - started) / OPS;
}

// A refusal rejects with RateLimiterRes: the bench fails loudly if the library changes that.
if (!(await new RateLimiterMemory({ points: 1, duration: 1 }).consume('k', 2).catch((e) => e)) instanceof RateLimiterRes) {
  throw new Error('rate-limiter-flexible no longer rejects with RateLimiterRes');
}

const results = [];
for (const c of cases) {
  const op = c.setup();
  await timeRun(op); // warm-up: JIT and the buckets' maps
  const runs = [];
  for (let r = 0; r < RUNS; r++) runs.push(await timeRun(op));
  results.push({ name: c.name, nsPerOp: median(runs), runsNsPerOp: runs.map((v) => Math.round(v)) });
}
const reference = results[0].nsPerOp;
for (const r of results) r.ratioToReference = r.nsPerOp / reference;

const width = Math.max(...results.map((r) => r.name.length));
console.log(`limiter cost per request — memory backend, ${OPS} ops × ${RUNS} runs (median), ${SESSIONS} sessions, node ${process.version}`);
console.log(`${'case'.padEnd(width)}  ${'ns/op'.padStart(8)}  ${'× ref'.padStart(6)}`);
for (const r of results) console.log(`${r.name.padEnd(width)}  ${r.nsPerOp.toFixed(0).padStart(8)}  ${r.ratioToReference.toFixed(2).padStart(6)}`);

const out = join(here, 'results', 'limiter.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ benchmark: 'limiter', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cpus: cpus().length, ops: OPS, runs: RUNS, sessions: SESSIONS, results }, null, 2)}\n`,
);
console.log(`written ${out}`);
