// `egress-gate check` is the allowlist test harness: it must give the proxy's own answer. Here
// it is compared with the wire for a table of targets, and it proves the private ranges that
// no test may send traffic to.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';
import { egressGate } from './cli.js';

let gate: Gate;
let upstream: Upstream;
const sessions: Record<string, TestSession> = {};
const names = ['registry.npmjs.org', 'api.anthropic.com', 'api.example.com', 'x.internal.example.com', 'internal.example.com', 'example.org', 'pypi.org'];

beforeAll(async () => {
  upstream = await startHttpUpstream();
  gate = await startGate({
    config: { upstream: { resolve: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'] } },
    environments: [
      { id: 'none', access: 'none', allowedPorts: [443, upstream.port] },
      { id: 'trusted', access: 'trusted', allowedPorts: [443, upstream.port] },
      { id: 'custom', access: 'custom', allowedDomains: ['api.example.com', `*.internal.example.com:${upstream.port}`], deniedDomains: ['pypi.org'], includeDefaults: true, allowedPorts: [443, upstream.port] },
      { id: 'full', access: 'full', deniedDomains: ['pypi.org'] },
    ],
  });
  for (const id of ['none', 'trusted', 'custom', 'full']) sessions[id] = await addSession(gate, id);
});

afterAll(async () => {
  await gate?.stop();
  await upstream?.close();
});

describe('check agrees with the wire', () => {
  const cases: [string, string][] = [];
  for (const env of ['none', 'trusted', 'custom', 'full']) for (const host of names) cases.push([env, host]);
  it.each(cases)('%s %s', async (env, host) => {
    const s = sessions[env]!;
    const wire = await rawConnect(gate.proxyPort, `${host}:${upstream.port}`, [basicAuth(s.id, s.token)]);
    const cli = await egressGate(['check', '--config', gate.configFile, '--environment', env, `${host}:${upstream.port}`]);
    const wireReason = wire.status === 200 ? 'allowed' : wire.headers['x-deny-reason'];
    expect(cli.stdout.split(' ')[1], cli.stderr).toBe(wireReason);
    expect(cli.code).toBe(wire.status === 200 ? 0 : 1);
  });
});

describe('check proves the private ranges without sending a packet', () => {
  const ranges = [
    ['169.254.169.254', 'link_local'],
    ['2852039166', 'link_local'],
    ['[fd00:ec2::254]', 'private'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['[::ffff:10.0.0.1]', 'private'],
    ['[::ffff:169.254.169.254]', 'link_local'],
    ['[fe80::1]', 'link_local'],
    ['[::1]', 'loopback'],
    ['127.0.0.2', 'loopback'],
  ];
  it.each(ranges)('full: %s → private_address (%s)', async (host, kind) => {
    const cli = await egressGate(['check', '--config', gate.configFile, '--environment', 'full', `${host}:443`]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(/^deny private_address /);
    expect(cli.stdout).toContain(kind);
  });

  it('accepts URLs: https default port 443, http 80', async () => {
    const https = await egressGate(['check', '--config', gate.configFile, '--environment', 'trusted', 'https://registry.npmjs.org/pkg']);
    expect(https.stdout).toMatch(/^allow allowed registry\.npmjs\.org:443 /);
    const http = await egressGate(['check', '--config', gate.configFile, '--environment', 'trusted', 'http://example.org/']);
    expect(http.code).toBe(1);
    expect(http.stdout).toMatch(/^deny host_not_allowed example\.org:80 /);
  });

  it('exits 2 on an unknown environment or a bad target', async () => {
    expect((await egressGate(['check', '--config', gate.configFile, '--environment', 'nope', 'example.org'])).code).toBe(2);
    expect((await egressGate(['check', '--config', gate.configFile, '--environment', 'full', 'exa mple.org'])).code).toBe(2);
    expect((await egressGate(['check', '--config', gate.configFile])).code).toBe(2);
  });
});
