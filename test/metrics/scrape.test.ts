// /metrics scraped from the admin listener after known traffic through the real proxy (Node
// http, curl, raw sockets), parsed as Prometheus text: every counter equals what was sent, per
// decision and reason, and agrees with the decision log.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { createTestCa } from '../helpers/certs.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { scrape } from '../helpers/prometheus.js';
import { proxyRequest } from '../helpers/proxy-http.js';
import { basicAuth, parseResponseHead, rawConnect, rawExchange } from '../helpers/raw.js';
import { cleanEnv, run } from '../helpers/run.js';
import { addSession, type TestSession } from '../helpers/sessions.js';
import { startHttpUpstream, startHttpsUpstream, type Upstream } from '../helpers/upstream.js';
import { version } from '../../src/runtime.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('metrics after known traffic', () => {
  let gate: Gate;
  let http: Upstream;
  let https: Upstream;
  let caFile: string;
  let deadPort: number;
  let web: TestSession;
  let limited: TestSession;
  let orphan: TestSession;

  beforeAll(async () => {
    const ca = createTestCa();
    http = await startHttpUpstream();
    https = await startHttpsUpstream(ca.issue(['api.example.com']));
    caFile = join(tempDir(), 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    deadPort = await closedPort();
    const ports = [http.port, https.port, deadPort];
    gate = await startGate({
      config: { upstream: { resolve: { 'api.example.com': '127.0.0.1', 'bad.example.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
      environments: [
        { id: 'web', access: 'custom', allowedDomains: ['api.example.com'], deniedDomains: ['bad.example.com'], allowedPorts: ports },
        { id: 'limited', access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: ports, rateLimit: { requestsPerSecond: 1, burst: 2 } },
        { id: 'temp', access: 'trusted' },
      ],
    });
    web = await addSession(gate, 'web');
    limited = await addSession(gate, 'limited');
    orphan = await addSession(gate, 'temp');
  });

  afterAll(async () => {
    await gate?.stop();
    await http?.close();
    await https?.close();
  });

  it('counts every request and tunnel by environment, decision and reason, as the log does', async () => {
    const api = `http://api.example.com:${http.port}`;
    let forwardDown = 0;
    for (let i = 0; i < 3; i++) {
      const response = await proxyRequest(gate.proxyPort, web, `${api}/bytes/1000`);
      expect(response.status).toBe(200);
      forwardDown += response.body.length;
    }
    const posted = await proxyRequest(gate.proxyPort, web, `${api}/echo`, { method: 'POST', body: Buffer.alloc(500, 7) });
    expect(posted.status).toBe(200);
    forwardDown += posted.body.length;
    for (let i = 0; i < 2; i++) expect((await proxyRequest(gate.proxyPort, web, `http://other.example.com:${http.port}/`)).status).toBe(403);
    expect((await rawConnect(gate.proxyPort, `bad.example.com:${https.port}`, [basicAuth(web.id, web.token)])).status).toBe(403);
    const curl = await run('curl', ['-sS', '--max-time', '20', '--proxy', web.proxyUrl, '--cacert', caFile, '-o', '/dev/null', '-w', '%{http_code}', `https://api.example.com:${https.port}/bytes/2000`], { env: cleanEnv() });
    expect(curl.stdout).toBe('200');
    expect((await proxyRequest(gate.proxyPort, { id: web.id, token: 'wrong' }, `${api}/`)).status).toBe(407);
    expect((await proxyRequest(gate.proxyPort, web, `http://api.example.com:${deadPort}/`)).status).toBe(502);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await proxyRequest(gate.proxyPort, limited, `${api}/`)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    const misdirected = parseResponseHead(await rawExchange(gate.proxyPort, `GET ${api}/ HTTP/1.1\r\nHost: evil.example.com\r\n\r\n`));
    expect(misdirected.status).toBe(421);

    // The environment "temp" goes away; its session's next request counts as "unknown".
    rmSync(join(gate.stateDir, 'environments', 'temp.yaml'));
    expect((await gate.runtime.reload()).ok).toBe(true);
    expect((await proxyRequest(gate.proxyPort, orphan, `${api}/`)).status).toBe(407);

    const sent = 16;
    for (let i = 0; i < 100 && gate.decisions().length < sent; i++) await sleep(20);
    const decisions = gate.decisions();
    expect(decisions).toHaveLength(sent);

    const metrics = await scrape(gate.adminUrl as string);
    const expected: [string, string, string, number][] = [
      ['web', 'allow', 'allowed', 5],
      ['web', 'deny', 'host_not_allowed', 2],
      ['web', 'deny', 'host_denied', 1],
      ['web', 'deny', 'upstream_unreachable', 1],
      ['limited', 'allow', 'allowed', 2],
      ['limited', 'deny', 'rate_limited', 2],
      ['unknown', 'deny', 'auth_invalid', 2],
      ['unknown', 'deny', 'misdirected', 1],
    ];
    for (const [environment, decision, reason, count] of expected) {
      expect(metrics.sum('egress_requests_total', { environment, decision, reason }), `${environment} ${decision} ${reason}`).toBe(count);
    }
    expect(metrics.sum('egress_requests_total')).toBe(sent);
    expect(metrics.find('egress_requests_total', { environment: 'temp' }), 'a deleted environment is not a label value').toEqual([]);

    // The log and the metrics come from the same records.
    const fromLog = new Map<string, number>();
    for (const d of decisions) {
      const known = ['web', 'limited'].includes(d.environment as string) ? (d.environment as string) : 'unknown';
      const key = `${known} ${d.decision as string} ${d.reason as string}`;
      fromLog.set(key, (fromLog.get(key) ?? 0) + 1);
    }
    for (const sample of metrics.find('egress_requests_total')) {
      if (sample.value === 0) continue;
      expect(fromLog.get(`${sample.labels.environment} ${sample.labels.decision} ${sample.labels.reason}`)).toBe(sample.value);
    }

    expect(metrics.sum('egress_rate_limited_total', { environment: 'limited', scope: 'session' })).toBe(2);
    expect(metrics.sum('egress_rate_limited_total')).toBe(2);
    expect(metrics.sum('egress_rate_limited_sessions', { environment: 'limited' })).toBe(1);
    expect(metrics.sum('egress_errors_total', { type: 'upstream_unreachable' })).toBe(1);

    const tunnel = decisions.find((d) => d.method === 'CONNECT' && d.decision === 'allow') as { bytesUp: number; bytesDown: number };
    expect(tunnel.bytesDown).toBeGreaterThan(2000);
    expect(metrics.sum('egress_tunnel_bytes_total', { environment: 'web', direction: 'down' })).toBe(tunnel.bytesDown);
    expect(metrics.sum('egress_tunnel_bytes_total', { environment: 'web', direction: 'up' })).toBe(tunnel.bytesUp);
    expect(metrics.sum('egress_bytes_total', { environment: 'web', kind: 'tunnel', direction: 'down' })).toBe(tunnel.bytesDown);
    expect(metrics.sum('egress_bytes_total', { environment: 'web', kind: 'forward', direction: 'up' })).toBe(500);
    expect(metrics.sum('egress_bytes_total', { environment: 'web', kind: 'forward', direction: 'down' })).toBe(forwardDown);

    const timed = decisions.filter((d) => d.decisionSeconds !== undefined).length;
    expect(metrics.sum('egress_decision_duration_seconds_count')).toBe(timed);
    expect(metrics.sum('egress_decision_duration_seconds_bucket', { le: '+Inf' })).toBe(timed);
    expect(metrics.sum('egress_upstream_connect_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(metrics.sum('egress_dns_lookup_seconds_count')).toBeGreaterThanOrEqual(1);

    expect(metrics.sum('egress_policy_entries', { environment: 'web' })).toBeGreaterThan(0);
    expect(metrics.find('egress_policy_entries', { environment: 'temp' }), 'a deleted environment leaves no gauge behind').toEqual([]);
    expect(metrics.sum('egress_build_info', { version, node: process.version })).toBe(1);
  });

  it('reload results, open connections, types, and no unbounded labels', async () => {
    const before = await scrape(gate.adminUrl as string);
    const broken = join(gate.stateDir, 'environments', 'broken.yaml');
    writeFileSync(broken, 'id: broken\naccess: sometimes\n');
    expect((await gate.runtime.reload()).ok).toBe(false);
    rmSync(broken);
    expect((await gate.runtime.reload()).ok).toBe(true);

    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect({ host: '127.0.0.1', port: gate.proxyPort });
      await new Promise((resolve) => socket.once('connect', resolve));
      held.push(socket);
    }
    let metrics = await scrape(gate.adminUrl as string);
    for (let i = 0; i < 50 && metrics.sum('egress_active_connections') !== 3; i++) {
      await sleep(20);
      metrics = await scrape(gate.adminUrl as string);
    }
    expect(metrics.sum('egress_active_connections')).toBe(3);
    for (const socket of held) socket.destroy();

    // The folder watch re-reads after each of those file changes too, so it may add its own.
    expect(metrics.sum('egress_policy_reloads_total', { result: 'failure' }) - before.sum('egress_policy_reloads_total', { result: 'failure' })).toBeGreaterThanOrEqual(1);
    expect(metrics.sum('egress_policy_reloads_total', { result: 'success' }) - before.sum('egress_policy_reloads_total', { result: 'success' })).toBeGreaterThanOrEqual(1);

    const types: Record<string, string> = {
      egress_requests_total: 'counter',
      egress_active_connections: 'gauge',
      egress_tunnel_bytes_total: 'counter',
      egress_decision_duration_seconds: 'histogram',
      egress_policy_reloads_total: 'counter',
      egress_rate_limited_total: 'counter',
      egress_rate_limited_sessions: 'gauge',
      egress_bytes_total: 'counter',
      egress_upstream_connect_seconds: 'histogram',
      egress_dns_lookup_seconds: 'histogram',
      egress_errors_total: 'counter',
      egress_policy_entries: 'gauge',
      egress_build_info: 'gauge',
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(types)) expect(metrics.types.get(name), name).toBe(type);

    const labels = new Set(metrics.samples.filter((s) => s.name.startsWith('egress_')).flatMap((s) => Object.keys(s.labels)));
    expect([...labels].sort()).toEqual(['decision', 'direction', 'environment', 'kind', 'le', 'node', 'reason', 'result', 'scope', 'type', 'version']);
    expect(metrics.types.has('egress_host_requests_total'), 'host labels are opt-in').toBe(false);
  });
});

describe('host labels, when an operator opts in', () => {
  let gate: Gate;
  let http: Upstream;
  const hosts = ['a.example.com', 'b.example.com', 'c.example.com', 'd.example.com'];

  beforeAll(async () => {
    http = await startHttpUpstream();
    gate = await startGate({
      config: {
        upstream: { resolve: Object.fromEntries(hosts.map((h) => [h, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'] },
        metrics: { hostLabels: true, maxHostLabels: 2 },
      },
      environments: [{ id: 'web', access: 'custom', allowedDomains: hosts.slice(0, 3), allowedPorts: [http.port] }],
    });
  });

  afterAll(async () => {
    await gate?.stop();
    await http?.close();
  });

  it('labels the first hosts and folds the rest into "other"', async () => {
    const session = await addSession(gate, 'web');
    for (const host of hosts) await proxyRequest(gate.proxyPort, session, `http://${host}:${http.port}/`);
    await proxyRequest(gate.proxyPort, session, `http://a.example.com:${http.port}/`);
    const metrics = await scrape(gate.adminUrl as string);
    expect(metrics.types.get('egress_host_requests_total')).toBe('counter');
    expect(metrics.sum('egress_host_requests_total', { environment: 'web', host: 'a.example.com', decision: 'allow' })).toBe(2);
    expect(metrics.sum('egress_host_requests_total', { host: 'b.example.com' })).toBe(1);
    expect(metrics.sum('egress_host_requests_total', { host: 'other', decision: 'allow' })).toBe(1);
    expect(metrics.sum('egress_host_requests_total', { host: 'other', decision: 'deny' })).toBe(1);
    expect(metrics.find('egress_host_requests_total').map((s) => s.labels.host).sort()).toEqual(['a.example.com', 'b.example.com', 'other', 'other']);
  });
});
