// Soak: a real egress-gate (the Runtime `serve` builds, in this process) under mixed traffic for
// a long time, with a policy change every second. Allowed plain HTTP and CONNECT, refused hosts,
// private addresses, a rate-limited session and a host that the policy toggles on and off.
// It samples RSS, open file descriptors (/proc/self/fd) and event-loop delay, and prints the
// figures docs/security.md quotes. Not a benchmark: concurrency is bounded and so is the time.
//   node bench/soak.js [--duration 600] [--concurrency 16] [--json] [--save]
// --json prints the figures as one JSON line on stdout (test/security/soak.test.ts reads it);
// --save writes them to bench/results/soak.json. Needs `npm run build`.

import { createServer, request, Agent } from 'node:http';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { parseConfig, formatErrors } from '../dist/config/load.js';
import { createLogger } from '../dist/log.js';
import { validateEnvironment } from '../dist/policy/environment.js';
import { Runtime } from '../dist/runtime.js';
import { hashToken, newSessionCredentials } from '../dist/state/sessions.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    concurrency: { type: 'string', default: '16' },
    json: { type: 'boolean', default: false },
    save: { type: 'boolean', default: false },
  },
});
const durationMs = Number(values.duration) * 1000;
const concurrency = Number(values.concurrency);
const say = (line) => process.stderr.write(`${line}\n`);

// --- the world behind the proxy: one upstream on loopback, the only exempt address ---
const body = Buffer.alloc(2048, 'x');
const upstream = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end(body));
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const P = upstream.address().port;

// --- the gate ---
const dir = mkdtempSync(join(tmpdir(), 'egress-soak-'));
const stateDir = join(dir, 'state');
mkdirSync(join(stateDir, 'environments'), { recursive: true });
// private.test is on the list: only the address block stands between it and 127.0.0.2.
const app = { id: 'app', access: 'custom', allowedDomains: ['allowed.test', 'private.test'], allowedPorts: [P] };
const limited = { id: 'limited', access: 'custom', allowedDomains: ['allowed.test'], allowedPorts: [P], rateLimit: { requestsPerSecond: 5, burst: 5 } };
for (const env of [app, limited]) writeFileSync(join(stateDir, 'environments', `${env.id}.yaml`), stringify(env));
const configText = stringify({
  proxy: { listen: '127.0.0.1:0' },
  admin: { listen: '127.0.0.1:0', token: 'soak-token-0123456789' },
  stateDir,
  defaults: { allowlist: join(root, 'allowlists/default.yaml') },
  auth: { required: true },
  // Only the "limited" environment is rate limited (its own rateLimit); everyone else is not.
  limits: { requestsPerSecond: 1_000_000, burst: 1_000_000 },
  upstream: {
    resolve: { 'allowed.test': '127.0.0.1', 'toggle.test': '127.0.0.1', 'not-listed.test': '127.0.0.1', 'private.test': '127.0.0.2' },
    allowPrivateNetworks: ['127.0.0.1/32'],
  },
});
const loaded = parseConfig(configText, join(dir, 'egress.yaml'), {});
if (!loaded.ok) throw new Error(formatErrors(loaded.file, loaded.errors));
const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const created = await Runtime.create(loaded.config, createLogger('info', discard));
if (!created.ok) throw new Error(JSON.stringify(created.problems));
const runtime = created.runtime;
const { proxy } = await runtime.start();
// No name here needs DNS; one that did would fail rather than leave the machine.
runtime.context.dial.lookup = async (host) => {
  throw Object.assign(new Error(`no DNS in the soak: ${host}`), { code: 'ENOTFOUND' });
};

async function session(environment) {
  const { id, token } = newSessionCredentials();
  await runtime.store.putSession({ id, environment, tokenHash: hashToken(token), createdAt: new Date().toISOString() });
  return `Basic ${Buffer.from(`${id}:${token}`).toString('base64')}`;
}
const auth = { app: await session('app'), limited: await session('limited') };

// --- traffic ---
const figures = {
  durationSeconds: durationMs / 1000,
  concurrency,
  requests: 0,
  served: 0,
  refusals: {},
  unexpected: [],
  policyChanges: 0,
};
let toggleOn = false;
const unexpected = (what) => {
  if (figures.unexpected.length < 50) figures.unexpected.push(what);
  else figures.unexpectedDropped = (figures.unexpectedDropped ?? 0) + 1;
};

function plain(agent, host, authorization) {
  return new Promise((resolveResponse) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, method: 'GET', path: `http://${host}:${P}/soak`, headers: { host: `${host}:${P}`, 'proxy-authorization': authorization }, agent, timeout: 10_000 });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolveResponse({ status: res.statusCode, reason: res.headers['x-deny-reason'] }));
      res.on('error', (error) => resolveResponse({ error: error.code ?? error.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', (error) => resolveResponse({ error: error.code ?? error.message }));
    req.end();
  });
}

function tunnel(host, authorization) {
  return new Promise((resolveResponse) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, method: 'CONNECT', path: `${host}:${P}`, headers: { 'proxy-authorization': authorization }, agent: false, timeout: 10_000 });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return resolveResponse({ status: res.statusCode, reason: res.headers['x-deny-reason'] });
      }
      let received = 0;
      socket.on('data', (chunk) => {
        received += chunk.length;
        if (received >= body.length) socket.end();
      });
      socket.on('close', () => resolveResponse(received >= body.length ? { status: 200 } : { error: `tunnel closed after ${received} bytes` }));
      socket.on('error', () => {});
      socket.write(`GET /soak HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', (error) => resolveResponse({ error: error.code ?? error.message }));
    req.end();
  });
}

// [weight, name, run, the outcomes that are right for it]
const mix = [
  [35, 'allowed', (agent) => plain(agent, 'allowed.test', auth.app), ['200']],
  [15, 'tunnel', () => tunnel('allowed.test', auth.app), ['200']],
  [15, 'not listed', (agent) => plain(agent, 'not-listed.test', auth.app), ['403 host_not_allowed']],
  [10, 'private', (agent) => plain(agent, 'private.test', auth.app), ['403 private_address']],
  [5, 'private tunnel', () => tunnel('private.test', auth.app), ['403 private_address']],
  [10, 'rate limited', (agent) => plain(agent, 'allowed.test', auth.limited), ['200', '429 rate_limited']],
  // The policy flips this host every second; a request racing the flip may see either answer.
  [10, 'toggled', (agent) => plain(agent, 'toggle.test', auth.app), ['200', '403 host_not_allowed']],
];
const totalWeight = mix.reduce((sum, [w]) => sum + w, 0);
const pick = () => {
  let r = Math.random() * totalWeight;
  for (const entry of mix) if ((r -= entry[0]) < 0) return entry;
  return mix[0];
};

const deadline = Date.now() + durationMs;
async function worker() {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  while (Date.now() < deadline) {
    const [, name, run, expected] = pick();
    const outcome = await run(agent);
    figures.requests += 1;
    if (outcome.error) {
      // A request in flight to the toggled host when the policy drops it is cut at once (the
      // registry sweep: a policy change means now). That is the defence working, not a fault.
      if (name === 'toggled' && /ECONNRESET|socket hang up/.test(outcome.error)) figures.cutByPolicyChange = (figures.cutByPolicyChange ?? 0) + 1;
      else unexpected(`${name}: ${outcome.error}`);
      continue;
    }
    const key = outcome.status === 200 ? '200' : `${outcome.status} ${outcome.reason}`;
    if (outcome.status === 200) figures.served += 1;
    else {
      // Every refusal must carry its reason.
      if (!outcome.reason) unexpected(`${name}: ${outcome.status} without X-Deny-Reason`);
      figures.refusals[outcome.reason ?? 'none'] = (figures.refusals[outcome.reason ?? 'none'] ?? 0) + 1;
    }
    if (!expected.includes(key)) unexpected(`${name}: ${key}`);
  }
  agent.destroy();
}

// --- policy changes and samples, once a second ---
const fds = () => readdirSync('/proc/self/fd').length;
const rssMiB = () => process.memoryUsage().rss / 1024 / 1024;
// The histogram records whole sampling intervals: the delay is what exceeds the resolution.
const resolutionMs = 10;
const loop = monitorEventLoopDelay({ resolution: resolutionMs });
loop.enable();
const samples = [];
const warmupMs = Math.min(10_000, durationMs * 0.1);
const started = Date.now();
let start;
const ticker = setInterval(() => {
  toggleOn = !toggleOn;
  // Validated first, as the admin API does: the store takes only valid policies.
  const next = validateEnvironment({ ...app, allowedDomains: toggleOn ? [...app.allowedDomains, 'toggle.test'] : app.allowedDomains });
  if (!next.ok) throw new Error(JSON.stringify(next.errors));
  runtime.store.putEnvironment(next.value).then(
    () => (figures.policyChanges += 1),
    (error) => {
      figures.policyChangeErrors = (figures.policyChangeErrors ?? 0) + 1;
      unexpected(`policy change: ${error.message}`);
    },
  );
  const sample = { t: Math.round((Date.now() - started) / 1000), rssMiB: Math.round(rssMiB()), fds: fds(), requests: figures.requests };
  samples.push(sample);
  if (!start && Date.now() - started >= warmupMs) {
    start = sample;
    // Delay is measured after warm-up, as RSS and fds are.
    loop.reset();
  }
}, 1_000);

say(`soak: ${durationMs / 1000} s, ${concurrency} clients, proxy on 127.0.0.1:${proxy.port}`);
const before = { rssMiB: Math.round(rssMiB()), fds: fds() };
await Promise.all(Array.from({ length: concurrency }, () => worker()));
clearInterval(ticker);
// Let kept-alive and closing sockets settle before the last sample.
await new Promise((r) => setTimeout(r, 1_500));
const end = { rssMiB: Math.round(rssMiB()), fds: fds() };
loop.disable();

figures.rssMiB = { beforeTraffic: before.rssMiB, start: start?.rssMiB ?? before.rssMiB, end: end.rssMiB, max: Math.max(...samples.map((s) => s.rssMiB)) };
figures.fds = { beforeTraffic: before.fds, start: start?.fds ?? before.fds, end: end.fds, max: Math.max(...samples.map((s) => s.fds)) };
const delay = (ns) => Math.max(0, Math.round((ns / 1e6 - resolutionMs) * 10) / 10);
figures.eventLoopDelayMs = { p50: delay(loop.percentile(50)), p99: delay(loop.percentile(99)), max: delay(loop.max) };
figures.requestsPerSecond = Math.round(figures.requests / (durationMs / 1000));
figures.registeredAtEnd = runtime.connections.size;
figures.node = process.version;
figures.date = new Date().toISOString();

await runtime.stop(500);
await new Promise((r) => upstream.close(r));
rmSync(dir, { recursive: true, force: true });

say('');
say(`requests          ${figures.requests} (${figures.requestsPerSecond}/s), served ${figures.served}`);
say(`refusals          ${Object.entries(figures.refusals).map(([k, v]) => `${k} ${v}`).join(', ')}`);
say(`cut by a change   ${figures.cutByPolicyChange ?? 0} (in-flight requests to the toggled host)`);
say(`policy changes    ${figures.policyChanges}${figures.policyChangeErrors ? `, ${figures.policyChangeErrors} failed` : ''}`);
say(`RSS MiB           start ${figures.rssMiB.start} → end ${figures.rssMiB.end} (max ${figures.rssMiB.max}; ${figures.rssMiB.beforeTraffic} before traffic)`);
say(`open fds          start ${figures.fds.start} → end ${figures.fds.end} (max ${figures.fds.max}; ${figures.fds.beforeTraffic} before traffic)`);
say(`event-loop delay  p50 ${figures.eventLoopDelayMs.p50.toFixed(1)} ms, p99 ${figures.eventLoopDelayMs.p99.toFixed(1)} ms, max ${figures.eventLoopDelayMs.max.toFixed(1)} ms`);
say(`unexpected        ${figures.unexpected.length}${figures.unexpected.length ? `: ${figures.unexpected.slice(0, 5).join('; ')}` : ''}`);

if (values.save) {
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/soak.json'), `${JSON.stringify({ ...figures, samples }, null, 2)}\n`);
}
if (values.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
