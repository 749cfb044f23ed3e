// Bandwidth shaping of tunnels: curl through the real proxy to a local HTTPS upstream. The
// limit is 1 MiB/s per session and direction; bounds are generous (2 noisy cores) but far
// from what an unshaped loopback transfer takes (tens of milliseconds).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestCa } from '../helpers/certs.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { cleanEnv, run } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { patternBytes, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

let gate: Gate;
let https: Upstream;
let dir: string;
let caFile: string;

beforeAll(async () => {
  const ca = createTestCa();
  https = await startHttpsUpstream(ca.issue(['files.example.com']));
  dir = tempDir();
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  gate = await startGate({
    config: {
      upstream: { resolve: { 'files.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] },
      limits: { bandwidthBytesPerSecond: MiB },
    },
    environments: [
      { id: 'shaped', access: 'custom', allowedDomains: ['files.example.com'], allowedPorts: [https.port] },
      { id: 'unshaped', access: 'custom', allowedDomains: ['files.example.com'], allowedPorts: [https.port], rateLimit: { bandwidthBytesPerSecond: 0 } },
      { id: 'half', access: 'custom', allowedDomains: ['files.example.com'], allowedPorts: [https.port], rateLimit: { bandwidthBytesPerSecond: MiB / 2 } },
    ],
  });
});

afterAll(async () => {
  await gate?.stop();
  await https?.close();
});

/** Downloads /bytes/N through the proxy with curl; returns seconds taken and the file. */
async function download(session: TestSession, bytes: number, name: string): Promise<{ seconds: number; body: Buffer }> {
  const out = join(dir, name);
  const started = performance.now();
  const result = await run('curl', ['-sS', '--max-time', '30', '--proxy', session.proxyUrl, '--cacert', caFile, '-o', out, '-w', '%{http_code}', `https://files.example.com:${https.port}/bytes/${bytes}`], { env: cleanEnv() });
  const seconds = (performance.now() - started) / 1000;
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe('200');
  return { seconds, body: readFileSync(out) };
}

describe('tunnel bandwidth per session', () => {
  it('a 3 MiB download at 1 MiB/s (limits.bandwidthBytesPerSecond) takes about 3 s and arrives intact', async () => {
    const session = await addSession(gate, 'shaped');
    const { seconds, body } = await download(session, 3 * MiB, 'three.bin');
    expect(body.length).toBe(3 * MiB);
    expect(sha256(body)).toBe(sha256(patternBytes(0, 3 * MiB)));
    expect(seconds).toBeGreaterThan(2.0);
    expect(seconds).toBeLessThan(6);
    // The tunnel's record is written when the proxy sees both sides closed, just after curl exits.
    const record = async (): Promise<Record<string, unknown> | undefined> => {
      for (let i = 0; i < 100; i++) {
        const found = gate.decisions().find((d) => d.session === session.id && d.method === 'CONNECT');
        if (found) return found;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return undefined;
    };
    expect((await record())?.bytesDown).toBeGreaterThan(3 * MiB);
  });

  it('two tunnels of one session share its budget: 2 × 1.5 MiB at once take about 3 s', async () => {
    const session = await addSession(gate, 'shaped');
    const started = performance.now();
    const [one, two] = await Promise.all([download(session, 1.5 * MiB, 'one.bin'), download(session, 1.5 * MiB, 'two.bin')]);
    const seconds = (performance.now() - started) / 1000;
    expect(sha256(one.body)).toBe(sha256(patternBytes(0, 1.5 * MiB)));
    expect(sha256(two.body)).toBe(sha256(patternBytes(0, 1.5 * MiB)));
    expect(seconds).toBeGreaterThan(2.0);
    expect(seconds).toBeLessThan(6);
  });

  it('sessions do not share: two sessions downloading 1.5 MiB each at once both finish in about 1.5 s', async () => {
    const [a, b] = await Promise.all([addSession(gate, 'shaped'), addSession(gate, 'shaped')]);
    const [one, two] = await Promise.all([download(a, 1.5 * MiB, 'a.bin'), download(b, 1.5 * MiB, 'b.bin')]);
    // Shared, the pair would need 3 s.
    expect(one.seconds).toBeLessThan(2.6);
    expect(two.seconds).toBeLessThan(2.6);
    expect(one.seconds).toBeGreaterThan(0.9);
    expect(sha256(one.body)).toBe(sha256(two.body));
  });

  it('uploads are shaped too: 1.5 MiB up at 1 MiB/s, intact at the upstream', async () => {
    const session = await addSession(gate, 'shaped');
    const body = patternBytes(11, 1.5 * MiB);
    const file = join(dir, 'upload.bin');
    writeFileSync(file, body);
    const started = performance.now();
    const result = await run('curl', ['-sS', '--max-time', '30', '--proxy', session.proxyUrl, '--cacert', caFile, '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `https://files.example.com:${https.port}/upload`], { env: cleanEnv() });
    const seconds = (performance.now() - started) / 1000;
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toMatchObject({ bodyBytes: body.length, bodySha256: sha256(body) });
    expect(seconds).toBeGreaterThan(1.0);
    expect(seconds).toBeLessThan(5);
  });

  it('the policy overrides the config: 0 lifts the limit, a smaller value lowers it', async () => {
    const fast = await download(await addSession(gate, 'unshaped'), 3 * MiB, 'fast.bin');
    expect(sha256(fast.body)).toBe(sha256(patternBytes(0, 3 * MiB)));
    expect(fast.seconds).toBeLessThan(1.5);
    const slow = await download(await addSession(gate, 'half'), MiB, 'half.bin');
    expect(sha256(slow.body)).toBe(sha256(patternBytes(0, MiB)));
    expect(slow.seconds).toBeGreaterThan(1.4);
    expect(slow.seconds).toBeLessThan(5);
  });
});
