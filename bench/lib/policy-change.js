// Policy changes under load, through the admin API while 50 connections forward requests:
// the first PUT of a 100 000-entry environment, then changes of one entry to it (what an
// operator does day to day), sent whole (PUT) and as an edit (PATCH). Each answers once the
// policy is in force; each change is checked with /v1/check, and no forwarded request may fail.
import autocannon from 'autocannon';
import { request } from 'node:http';
import { adminToken } from './procs.js';
import { spread } from './stats.js';

// Every time is kept (`runs`): a median and its extremes do not say whether a slow change was one or several.
const timed = (xs) => ({ ...spread(xs), runs: xs });

/**
 * Milliseconds from the first byte of the request to the last of the answer. Node's `http` with
 * the body encoded beforehand, not `fetch`: on this machine fetch spent 20-25 ms of its own
 * turning a 3 MB string into a request stream (71 against 51 ms median for the same PUT, no
 * load; curl, a process of its own, 47), time of the client's and not of the change.
 */
function send(adminUrl, method, body) {
  const data = Buffer.from(body);
  // A whole list is not asked back (Prefer: return=minimal): the 3 MB echo is not the change.
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'content-length': data.length, prefer: 'return=minimal' };
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const sent = request(`${adminUrl}/v1/environments/default`, { method, headers }, (answer) => {
      answer.resume();
      answer.on('end', () => (answer.statusCode < 300 ? resolve(performance.now() - started) : reject(new Error(`${method} answered ${answer.statusCode}`))));
    });
    sent.on('error', reject);
    sent.end(data);
  });
}

async function allows(adminUrl, host) {
  const answer = await fetch(`${adminUrl}/v1/check?environment=default&url=${host}`, { headers: { authorization: `Bearer ${adminToken}` } });
  return (await answer.json()).decision === 'allow';
}

export async function policyChangeFigures({ gate, up, seconds, changes = 9 }) {
  const entries = Array.from({ length: 100_000 }, (_, i) => `h${i}.zone${i % 1000}.example.com`);
  const policy = (extra) => JSON.stringify({ access: 'custom', includeDefaults: true, allowedDomains: ['bench.test', '*.bench.test', ...entries, ...extra], allowedPorts: [80, 443, up.http, up.https, up.bulk, up.hold] });
  const load = autocannon({ url: `http://127.0.0.1:${gate.port}`, connections: 50, duration: seconds * 2, requests: [{ path: `http://bench.test:${up.http}/`, headers: { host: `bench.test:${up.http}` } }] });
  await new Promise((r) => setTimeout(r, 500));
  const firstMs = await send(gate.adminUrl, 'PUT', policy([]));
  let inForce = (await allows(gate.adminUrl, 'h99999.zone999.example.com')) ? 1 : 0;
  const putMs = [];
  const patchMs = [];
  for (let i = 0; i < changes; i++) {
    const added = `added${i}.example.net`;
    putMs.push(await send(gate.adminUrl, 'PUT', policy([added])));
    if (await allows(gate.adminUrl, added)) inForce += 1;
    const edited = `edited${i}.example.net`;
    patchMs.push(await send(gate.adminUrl, 'PATCH', JSON.stringify({ add: { allowedDomains: [edited] } })));
    if (await allows(gate.adminUrl, edited)) inForce += 1;
  }
  const loaded = await load;
  return {
    'first PUT ms': timed([firstMs]),
    'one-entry change by PUT ms': timed(putMs),
    'one-entry change by PATCH ms': timed(patchMs),
    'changes in force': timed([inForce]),
    'failed requests': timed([loaded.errors + loaded.non2xx]),
    'req/s meanwhile': timed([loaded.requests.average]),
  };
}
