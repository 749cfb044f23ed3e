// TLS inspection cost, every figure against a reference measured in the same run:
//  - requests/s over kept-alive HTTPS tunnels, inspected vs opaque (same proxy, same upstream);
//  - the first handshake through the proxy to a new host (leaf made and signed) vs to a host
//    whose leaf is cached;
//  - the leaf itself: one signature with the shared key (this design) vs a fresh RSA key per
//    host, with node's crypto and with node-forge's generateKeyPair (http-mitm-proxy's default).
//   node bench/inspect.js [--seconds 4] [--runs 3] [--connections 8] [--hosts 25]
// Needs `npm run build`.

import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createServer as createHttpServer, Agent, request } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import forge from 'node-forge';
import { stringify } from 'yaml';
import { initCa, loadCa, rsaKeyPair, signCertificate, randomSerial } from '../dist/inspect/ca.js';
import { LeafCache } from '../dist/inspect/leaf-cache.js';
import { median } from './lib/stats.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, runs: { type: 'string', default: '3' }, connections: { type: 'string', default: '8' }, hosts: { type: 'string', default: '25' } } });
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const connections = Number(values.connections);
const hostCount = Number(values.hosts);

// An upstream CA and a leaf for every name the bench uses, as the upstream's own certificate.
const dir = mkdtempSync(join(tmpdir(), 'egress-bench-inspect-'));
/** A day-long certificate for a new key, issued by `issuer` (itself when absent). */
function certificate(commonName, extensions, issuer) {
  const pair = rsaKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = pair.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer((issuer?.cert ?? cert).subject.attributes);
  cert.setExtensions(extensions);
  signCertificate(cert, issuer?.key ?? pair.key);
  return { cert, pem: forge.pki.certificateToPem(cert), key: pair.key, keyPem: pair.keyPem };
}
const upstreamCa = certificate('bench upstream CA', [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }]);
const names = ['inspected.example.com', 'opaque.example.com', ...Array.from({ length: hostCount * 2 }, (_, i) => `h${i}.example.com`)];
const leaf = certificate(names[0], [{ name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) }], upstreamCa);
const upstreamLeaf = { cert: leaf.pem, key: leaf.keyPem };
const upstreamCaFile = join(dir, 'upstream-ca.pem');
writeFileSync(upstreamCaFile, upstreamCa.pem);
const body = Buffer.alloc(1024, 'x');
const upstream = createHttpsServer({ cert: upstreamLeaf.cert, key: upstreamLeaf.key }, (req, res) => res.end(body));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamPort = upstream.address().port;

const caDir = join(dir, 'certs');
await initCa(caDir);
const inspectionCaPem = readFileSync(join(caDir, 'ca.pem'), 'utf8');

async function freePort() {
  const s = createHttpServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startGate() {
  mkdirSync(join(dir, 'state'), { recursive: true });
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const config = {
    proxy: { listen: `127.0.0.1:${proxyPort}` },
    admin: { listen: `127.0.0.1:${adminPort}`, token: 'bench-token-0123456789' },
    stateDir: join(dir, 'state'),
    defaults: { allowlist: join(root, 'allowlists/default.yaml') },
    upstream: { resolve: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'], caFiles: [upstreamCaFile] },
    limits: { requestsPerSecond: 1000000, burst: 1000000, maxConnections: 100000 },
    logging: { level: 'warn' },
    inspection: { caDir },
    environments: [{ id: 'default', access: 'full', content: { inspect: 'all', inspectExclude: ['opaque.example.com'] } }],
  };
  const file = join(dir, 'egress.yaml');
  writeFileSync(file, stringify(config));
  const child = spawn(process.execPath, [join(root, 'dist/cli.js'), 'serve', '--config', file], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proxyPort, stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) };
}

/** CONNECT + TLS; resolves with the TLS socket and the ms from CONNECT sent to TLS established. */
function tunnel(proxyPort, host, ca) {
  return new Promise((resolveTunnel, reject) => {
    const started = performance.now();
    const raw = netConnect({ host: '127.0.0.1', port: proxyPort }, () => raw.write(`CONNECT ${host}:${upstreamPort} HTTP/1.1\r\nHost: ${host}:${upstreamPort}\r\n\r\n`));
    raw.once('error', reject);
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(head.split('\r\n')[0]));
      const secure = tlsConnect({ socket: raw, servername: host, ca });
      secure.once('secureConnect', () => resolveTunnel({ socket: secure, ms: performance.now() - started }));
      secure.once('error', reject);
    };
    raw.on('data', onData);
  });
}

/** `connections` kept-alive tunnels, each sending GETs back to back for `seconds`. */
async function throughput(proxyPort, host, ca) {
  let done = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      agent.createConnection = (_o, cb) => {
        tunnel(proxyPort, host, ca).then((t) => cb(null, t.socket), cb);
      };
      while (performance.now() < deadline) {
        const status = await new Promise((r) => {
          const req = request({ agent, host: '127.0.0.1', path: '/', headers: { host: `${host}:${upstreamPort}` } }, (res) => {
            res.resume();
            res.on('end', () => r(res.statusCode));
          });
          req.on('error', () => r(0));
          req.end();
        });
        if (status === 200) done += 1;
        else errors += 1;
      }
      agent.destroy();
    }),
  );
  return { rps: done / seconds, errors };
}

const rows = { inspected: [], opaque: [], firstHandshake: [], cachedHandshake: [] };
let errors = 0;
for (let run = 0; run < runs; run++) {
  const gate = await startGate();
  const opaque = await throughput(gate.proxyPort, 'opaque.example.com', upstreamCa.pem);
  const inspected = await throughput(gate.proxyPort, 'inspected.example.com', inspectionCaPem);
  rows.opaque.push(opaque.rps);
  rows.inspected.push(inspected.rps);
  errors += opaque.errors + inspected.errors;
  // New hosts, one at a time: each first handshake makes and signs a leaf.
  const first = [];
  const cached = [];
  for (let i = 0; i < hostCount; i++) {
    const host = `h${(run * hostCount + i) % (hostCount * 2)}.example.com`;
    const a = await tunnel(gate.proxyPort, host, inspectionCaPem);
    first.push(a.ms);
    a.socket.destroy();
    const b = await tunnel(gate.proxyPort, host, inspectionCaPem);
    cached.push(b.ms);
    b.socket.destroy();
  }
  rows.firstHandshake.push(median(first));
  rows.cachedHandshake.push(median(cached));
  await gate.stop();
}
upstream.close();

// The leaf alone, in this process: shared key + signature vs a key per host.
const loaded = loadCa(caDir);
const cache = new LeafCache(loaded.ca, 10_000);
const timeIt = (n, fn) => median(Array.from({ length: n }, (_, i) => { const t = performance.now(); fn(i); return performance.now() - t; }));
const leafMs = timeIt(50, (i) => cache.contextFor(`leaf${i}.example.com`));
const nativeKeyMs = timeIt(10, () => generateKeyPairSync('rsa', { modulusLength: 2048 }));
const forgeKeyMs = timeIt(3, () => forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 }));

const fmt = (xs) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
const ratio = median(rows.inspected) / median(rows.opaque);
console.log(`\nTLS inspection, 1 KiB GETs, ${connections} kept-alive tunnels, ${seconds} s x ${runs} runs (median, min-max)\n`);
console.log('| measure | value | reference | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(`| requests/s inspected | ${fmt(rows.inspected)} | opaque tunnel ${fmt(rows.opaque)} | ${ratio.toFixed(2)} |`);
console.log(`| first handshake to a new host, ms | ${fmt(rows.firstHandshake)} | cached leaf ${fmt(rows.cachedHandshake)} | ${(median(rows.firstHandshake) / median(rows.cachedHandshake)).toFixed(2)} |`);
console.log(`| leaf: shared key + one signature, ms | ${leafMs.toFixed(2)} | new RSA-2048 key per host: node crypto ${nativeKeyMs.toFixed(1)}, node-forge generateKeyPair ${forgeKeyMs.toFixed(0)} | ${(leafMs / nativeKeyMs).toFixed(3)} / ${(leafMs / forgeKeyMs).toFixed(4)} |`);
console.log(`errors: ${errors}`);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results', `inspect-${Date.now()}.json`), JSON.stringify({ seconds, runs, connections, hostCount, rows, leafMs, nativeKeyMs, forgeKeyMs, errors }, null, 2));
