// The private-address block on the wire, at every level (full included), aimed only at
// loopback. The test's upstream lives on 127.0.0.3 and only 127.0.0.3/32 is exempt, so every
// other loopback spelling must be refused. Other ranges are proven by the classifier's unit
// tests and by `check` (test/cli), never by traffic.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, parseResponseHead, rawConnect, rawExchange } from '../helpers/raw.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

let gate: Gate;
let upstream: Upstream;
let decoy: Upstream;
const sessions: Record<string, TestSession> = {};
const levels = ['none', 'trusted', 'custom', 'full'] as const;

beforeAll(async () => {
  upstream = await startHttpUpstream('127.0.0.3');
  // A decoy on 127.0.0.1 with the same port would answer if the block failed.
  decoy = await startHttpUpstream('127.0.0.2');
  gate = await startGate({
    config: {
      upstream: {
        resolve: { 'allowed.test': '127.0.0.3', 'sneaky.test': '127.0.0.2', 'registry.npmjs.org': '127.0.0.2' },
        allowPrivateNetworks: ['127.0.0.3/32'],
      },
    },
    environments: levels.map((access) => ({
      id: access,
      access,
      allowedDomains: access === 'custom' ? ['allowed.test', 'sneaky.test', 'localhost', '127.0.0.2', '127.0.0.1', '::1', '::ffff:127.0.0.2', '0.0.0.0', '127.0.0.3'] : [],
      ...(access === 'full' ? {} : { allowedPorts: [upstream.port, decoy.port] }),
    })),
  });
  for (const level of levels) sessions[level] = await addSession(gate, level);
});

afterAll(async () => {
  await gate?.stop();
  await upstream?.close();
  await decoy?.close();
});

const targets = ['127.0.0.2', '2130706434', '127.1', '0x7f.0.0.2', '[::1]', '[::ffff:127.0.0.2]', '0.0.0.0', 'sneaky.test', 'localhost'];

describe.each(levels)('private-address block under %s', (level) => {
  it.each(targets)('CONNECT %s is refused before any byte reaches it', async (host) => {
    const s = sessions[level]!;
    const before = decoy.connections;
    const response = await rawConnect(gate.proxyPort, `${host}:${decoy.port}`, [basicAuth(s.id, s.token)]);
    expect(response.status).toBe(403);
    // Under none/trusted the domain check may refuse first; under full and custom (which lists
    // these hosts) only the address block stands between the client and loopback.
    if (level === 'full' || level === 'custom') expect(response.headers['x-deny-reason']).toBe('private_address');
    else expect(['host_not_allowed', 'private_address']).toContain(response.headers['x-deny-reason']);
    expect(decoy.connections).toBe(before);
  });

  it.each(targets)('GET http://%s/ is refused before any byte reaches it', async (host) => {
    const s = sessions[level]!;
    const before = decoy.connections;
    const raw = await rawExchange(gate.proxyPort, `GET http://${host}:${decoy.port}/ HTTP/1.1\r\n${basicAuth(s.id, s.token)}\r\n\r\n`);
    const response = parseResponseHead(raw);
    expect(response.status).toBe(403);
    if (level === 'full') expect(response.headers['x-deny-reason']).toBe('private_address');
    expect(decoy.connections).toBe(before);
  });
});

describe('the exempt network', () => {
  it('lets a name mapped into allowPrivateNetworks through under full and custom', async () => {
    for (const level of ['full', 'custom'] as const) {
      const s = sessions[level]!;
      const raw = await rawExchange(gate.proxyPort, `GET http://allowed.test:${upstream.port}/ok HTTP/1.1\r\nHost: allowed.test:${upstream.port}\r\n${basicAuth(s.id, s.token)}\r\nConnection: close\r\n\r\n`);
      expect(parseResponseHead(raw).status).toBe(200);
    }
  });

  it('refuses a Trusted name whose pinned address is outside the exempt network', async () => {
    const s = sessions.trusted!;
    const response = await rawConnect(gate.proxyPort, `registry.npmjs.org:${decoy.port}`, [basicAuth(s.id, s.token)]);
    expect(response.status).toBe(403);
    expect(response.headers['x-deny-reason']).toBe('private_address');
  });
});
