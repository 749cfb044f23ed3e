// Policy changes under load, through the admin API while 50 connections forward requests:
// the first PUT of a 100 000-entry environment, then changes of one entry to it (what an
// operator does day to day), sent whole (PUT) and as an edit (PATCH). Two times per change: until
// it is in force, by the gate's own clock from the request's arrival (its log record of the change),
// and until the client has the answer, which waits until the file is durable. Each change is
// checked with /v1/check as well, and no forwarded request may fail.
//
// Why the gate's clock for "in force": a client finds out by a request through the proxy, and under
// this load each takes several turns of a loop that is a few milliseconds long. Polled that way,
// changes the gate had in force after 17-42 ms were seen after 40-93.
import autocannon from 'autocannon';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
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

/** The gate's log records of changes to the bench's environment, written since byte `from` of its log file. */
function changesLogged(logFile, from) {
  const fd = openSync(logFile, 'r');
  try {
    const text = Buffer.alloc(fstatSync(fd).size - from);
    readSync(fd, text, 0, text.length, from);
    const records = text.toString('utf8').split('\n').filter((line) => line.includes('"msg":"policy changed"'));
    return records.map((line) => JSON.parse(line)).filter((record) => record.environment === 'default');
  } finally {
    closeSync(fd);
  }
}

async function allows(adminUrl, host) {
  const answer = await fetch(`${adminUrl}/v1/check?environment=default&url=${host}`, { headers: { authorization: `Bearer ${adminToken}` } });
  return (await answer.json()).decision === 'allow';
}

export async function policyChangeFigures({ gate, up, seconds, changes = 9 }) {
  const entries = Array.from({ length: 100_000 }, (_, i) => `h${i}.zone${i % 1000}.example.com`);
  const policy = (extra) => JSON.stringify({ access: 'custom', includeDefaults: true, allowedDomains: ['bench.test', '*.bench.test', ...entries, ...extra], allowedPorts: [80, 443, up.http, up.https, up.bulk, up.hold] });
  const logFrom = statSync(gate.log).size;
  const load = autocannon({ url: `http://127.0.0.1:${gate.port}`, connections: 50, duration: seconds * 2, requests: [{ path: `http://bench.test:${up.http}/`, headers: { host: `bench.test:${up.http}` } }] });
  await new Promise((r) => setTimeout(r, 500));
  const firstMs = await send(gate.adminUrl, 'PUT', policy([]));
  let checked = (await allows(gate.adminUrl, 'h99999.zone999.example.com')) ? 1 : 0;
  const putMs = [];
  const patchMs = [];
  for (let i = 0; i < changes; i++) {
    const added = `added${i}.example.net`;
    putMs.push(await send(gate.adminUrl, 'PUT', policy([added])));
    if (await allows(gate.adminUrl, added)) checked += 1;
    const edited = `edited${i}.example.net`;
    patchMs.push(await send(gate.adminUrl, 'PATCH', JSON.stringify({ add: { allowedDomains: [edited] } })));
    if (await allows(gate.adminUrl, edited)) checked += 1;
  }
  const loaded = await load;
  // pino writes asynchronously: the last record may land a moment after its answer.
  let logged = changesLogged(gate.log, logFrom);
  for (let i = 0; i < 50 && logged.length < 1 + 2 * changes; i++) {
    await new Promise((r) => setTimeout(r, 100));
    logged = changesLogged(gate.log, logFrom);
  }
  const kinds = logged.map((r) => r.change).join(' ');
  if (kinds !== ['replace', ...Array(changes).fill('replace edit')].join(' ')) throw new Error(`the gate logged these changes: ${kinds}`);
  const inForce = (change) => logged.slice(1).filter((r) => r.change === change).map((r) => r.inForceMs);
  return {
    'first PUT: in force ms': timed([logged[0].inForceMs]),
    'first PUT: answered ms': timed([firstMs]),
    'one-entry change by PUT: in force ms': timed(inForce('replace')),
    'one-entry change by PUT: answered ms': timed(putMs),
    'one-entry change by PATCH: in force ms': timed(inForce('edit')),
    'one-entry change by PATCH: answered ms': timed(patchMs),
    'changes in force': timed([checked]),
    'failed requests': timed([loaded.errors + loaded.non2xx]),
    'req/s meanwhile': timed([loaded.requests.average]),
  };
}
