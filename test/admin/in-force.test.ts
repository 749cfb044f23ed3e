// A policy change is in force before its file is durable, and the answer waits for the disk:
// a change (a revocation above all) never waits on a slow fsync. A write that fails after the
// change went into force is taken back. Every change is logged with both times. The disk is
// made slow for real: every thread of libuv's pool, where the file's fsync runs, is held in an
// open() of a FIFO until the test lets it go.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, open, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { api, type ApiAnswer } from '../helpers/admin.js';
import { eventually } from '../helpers/eventually.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

let gate: Gate;
let upstream: Upstream;
let auth: string;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  gate = await startGate({
    config: {
      auth: { required: true },
      upstream: { resolve: { 'api.example.com': '127.0.0.1', 'late.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] },
    },
  });
  expect((await api(gate, 'PUT', '/v1/environments/slow', policy(['api.example.com']))).status).toBe(201);
  const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'slow' })).body as { id: string; token: string };
  auth = basicAuth(session.id, session.token);
});

afterAll(async () => {
  await gate?.stop();
  await upstream?.close();
});

function policy(allowedDomains: string[]): Record<string, unknown> {
  return { access: 'custom', allowedDomains, allowedPorts: [upstream.port] };
}

const status = async (host: string): Promise<number> => (await rawConnect(gate.proxyPort, `${host}:${upstream.port}`, [auth])).status;
const policyFile = (): string => join(gate.stateDir, 'environments', 'slow.yaml');

/**
 * Holds every thread of libuv's pool in this process (the gate's too: it runs in it) until
 * `release`. Only synchronous fs calls may run meanwhile: an asynchronous one would queue as well.
 */
function holdThreadPool(): { release(): Promise<void> } {
  const dir = tempDir('egress-gate-fifo-');
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: threads }, (_, i) => join(dir, `hold-${i}`));
  for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
  const opened = fifos.map((fifo) => new Promise<number>((resolve, reject) => open(fifo, 'r', (error, fd) => (error ? reject(error) : resolve(fd)))));
  return {
    async release() {
      for (const fifo of fifos) {
        // A writer that opens without waiting fails (ENXIO) until the pool thread's open() is under way.
        await eventually(() => {
          try {
            closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
            return true;
          } catch {
            return false;
          }
        }, 5_000, 5);
      }
      for (const fd of await Promise.all(opened)) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The log records of policy changes to `environment`. */
const changes = (environment: string): Record<string, unknown>[] =>
  gate.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((r) => r.environment === environment && String(r.msg).startsWith('policy change'));

/** The answer of a PUT, and whether it has come yet. */
function pendingPut(body: Record<string, unknown>): { answered: () => boolean; answer: Promise<ApiAnswer> } {
  let done = false;
  const answer = api(gate, 'PUT', '/v1/environments/slow', body).finally(() => {
    done = true;
  });
  return { answered: () => done, answer };
}

describe('a policy change and its write', () => {
  it('is in force while its file is still being written; the answer waits until the file is durable', async () => {
    expect(await status('late.example.com')).toBe(403);
    const pool = holdThreadPool();
    const put = pendingPut(policy(['api.example.com', 'late.example.com']));
    try {
      await eventually(async () => (await status('late.example.com')) === 200, 5_000);
      expect(put.answered()).toBe(false);
      // Not durable yet: the file on disk is still the version before.
      expect(readFileSync(policyFile(), 'utf8')).not.toContain('late.example.com');
    } finally {
      await pool.release();
    }
    expect((await put.answer).status).toBe(200);
    expect(readFileSync(policyFile(), 'utf8')).toContain('late.example.com');
    expect(await status('late.example.com')).toBe(200);
    const logged = changes('slow').at(-1) as { change: string; allowedDomains: number; inForceMs: number; durableMs: number };
    expect([logged.change, logged.allowedDomains]).toEqual(['replace', 2]);
    // The write was held until the proxy had forwarded to the new host: well after it was in force.
    expect(logged.durableMs).toBeGreaterThan(logged.inForceMs);
  });

  it('a write that fails after the change went into force is taken back: 500, and the version before is in force again', async () => {
    expect((await api(gate, 'PUT', '/v1/environments/slow', policy(['api.example.com']))).status).toBe(200);
    expect(await status('late.example.com')).toBe(403);
    const pool = holdThreadPool();
    const put = pendingPut(policy(['api.example.com', 'late.example.com']));
    const file = policyFile();
    let blocked = false;
    try {
      await eventually(async () => (await status('late.example.com')) === 200, 5_000);
      expect(put.answered()).toBe(false);
      // The rename that would make the change durable will meet a folder in the file's place.
      renameSync(file, `${file}.moved`);
      mkdirSync(join(file, 'blocker'), { recursive: true });
      blocked = true;
    } finally {
      await pool.release();
    }
    try {
      expect((await put.answer).status).toBe(500);
      expect(await status('late.example.com')).toBe(403);
      expect(await status('api.example.com')).toBe(200);
      expect((await api(gate, 'GET', '/v1/environments/slow')).body.allowedDomains).toEqual(['api.example.com']);
      expect(changes('slow').at(-1)).toMatchObject({ level: 'error', change: 'replace', msg: 'policy change not written; the version before it is in force', err: expect.stringContaining('slow.yaml') });
    } finally {
      if (blocked) {
        rmSync(file, { recursive: true });
        renameSync(`${file}.moved`, file);
      }
    }
    expect(readFileSync(file, 'utf8')).not.toContain('late.example.com');
  });

  it('every change through the API is logged: what changed, and how long until in force and durable', async () => {
    expect((await api(gate, 'PUT', '/v1/environments/audited', { ...policy(['a.example.com', 'b.example.com']), deniedDomains: ['c.example.com'] })).status).toBe(201);
    expect((await api(gate, 'PATCH', '/v1/environments/audited', { add: { allowedDomains: ['d.example.com'] }, remove: { allowedDomains: ['a.example.com'] } })).status).toBe(200);
    expect((await api(gate, 'POST', '/v1/environments/audited/archive')).status).toBe(200);
    expect((await api(gate, 'DELETE', '/v1/environments/audited')).status).toBe(204);
    const logged = changes('audited');
    expect(logged.map((r) => [r.change, r.allowedDomains, r.deniedDomains])).toEqual([
      ['create', 2, 1],
      ['edit', { added: 1, removed: 1 }, { added: 0, removed: 0 }],
      ['archive', undefined, undefined],
      ['delete', undefined, undefined],
    ]);
    for (const record of logged) {
      expect(record.msg).toBe('policy changed');
      expect(record.durableMs).toBeGreaterThan(0);
      if (record.change !== 'delete') expect(record.inForceMs).toBeLessThanOrEqual(record.durableMs as number);
    }
    // The lists themselves are not copied into the log: a GET reads them.
    expect(JSON.stringify(logged)).not.toContain('example.com');
  });
});
