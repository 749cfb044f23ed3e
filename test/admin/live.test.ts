// Live policy: open tunnels cut when a PUT refuses their destination or a session is revoked;
// hand-written files picked up without a call; a broken file refused with the last good
// policy kept; reload; and state that survives a restart.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { join } from 'node:path';
import { request } from 'node:http';
import { connect } from 'node:net';
import { api } from '../helpers/admin.js';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, rawConnect } from '../helpers/raw.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';
import { eventually } from '../helpers/eventually.js';
import { parsePrometheusText } from '../helpers/prometheus.js';

let gate: Gate;
let upstream: Upstream;

beforeAll(async () => {
  upstream = await startHttpUpstream();
  gate = await startGate({
    config: { auth: { required: true }, upstream: { resolve: { 'api.example.com': '127.0.0.1', 'registry.npmjs.org': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'] } },
  });
});

afterAll(async () => {
  await gate?.stop();
  await upstream?.close();
});

const env = (domains: string[], extra: Record<string, unknown> = {}) => ({ access: 'custom', allowedDomains: domains, allowedPorts: [upstream.port], ...extra });


/** Opens a tunnel (via CONNECT) and starts a slow download through it; resolves when the first bytes arrive. */
function slowDownload(session: { id: string; token: string }): Promise<{ closedAt: Promise<number>; bytes: () => number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gate.proxyPort, method: 'CONNECT', path: `api.example.com:${upstream.port}`, headers: { 'proxy-authorization': basicAuth(session.id, session.token).split(': ')[1] } });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) return reject(new Error(`CONNECT ${res.statusCode}`));
      let bytes = 0;
      const closedAt = new Promise<number>((done) => socket.on('close', () => done(Date.now())));
      socket.on('error', () => {});
      socket.once('data', () => resolve({ closedAt, bytes: () => bytes }));
      socket.on('data', (c: Buffer) => (bytes += c.length));
      socket.write(`GET /drip/30 HTTP/1.1\r\nHost: api.example.com:${upstream.port}\r\n\r\n`);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('open connections follow the policy', () => {
  it('a long response through a tunnel to a host a PUT then removes is cut within a second', async () => {
    await api(gate, 'PUT', '/v1/environments/cut', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'cut' })).body;
    const download = await slowDownload(session);
    const putAt = Date.now();
    expect((await api(gate, 'PUT', '/v1/environments/cut', env(['registry.npmjs.org']))).status).toBe(200);
    const closedAt = await Promise.race([download.closedAt, new Promise<number>((r) => setTimeout(() => r(Infinity), 5_000))]);
    expect(closedAt - putAt).toBeLessThan(1_000);
  });

  it('a large download read slowly through a tunnel is cut within a second of the PUT that removes its host', async () => {
    await api(gate, 'PUT', '/v1/environments/slow-read', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'slow-read' })).body;
    const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gate.proxyPort, method: 'CONNECT', path: `api.example.com:${upstream.port}`, headers: { 'proxy-authorization': basicAuth(session.id, session.token).split(': ')[1] } });
      req.on('connect', (res, s) => (res.statusCode === 200 ? resolve(s) : reject(new Error(`CONNECT ${res.statusCode}`))));
      req.on('error', reject);
      req.end();
    });
    const closedAt = new Promise<number>((done) => socket.on('close', () => done(Date.now())));
    socket.on('error', () => {});
    socket.write(`GET /bytes/${512 * 1024 * 1024} HTTP/1.1\r\nHost: api.example.com:${upstream.port}\r\n\r\n`);
    // Read a little, then stop reading: the proxy's buffers fill and the transfer stalls, as
    // with a slow client. The cut must not wait for the flow to resume.
    let received = 0;
    socket.on('data', (c: Buffer) => (received += c.length));
    await eventually(() => received > 256 * 1024, 5_000, 1);
    socket.pause();
    const putAt = Date.now();
    expect((await api(gate, 'PUT', '/v1/environments/slow-read', env(['registry.npmjs.org']))).status).toBe(200);
    // A paused client cannot see the FIN behind its unread bytes; the proxy's own record of the
    // tunnel's end (written when it closes both sides) says when the cut happened.
    const closedRecord = () => gate.decisions().find((r) => r.environment === 'slow-read' && r.durationMs !== undefined);
    const cutWithin = await eventually(() => closedRecord() !== undefined, 5_000);
    expect(cutWithin).toBeLessThan(1_000);
    expect(Number(closedRecord()!.bytesDown)).toBeLessThan(512 * 1024 * 1024);
    // And the client, reading again, gets what was buffered and then the end.
    socket.resume();
    const closed = await Promise.race([closedAt, new Promise<number>((r) => setTimeout(() => r(Infinity), 5_000))]);
    expect(closed).toBeLessThan(Infinity);
    expect(received).toBeLessThan(512 * 1024 * 1024);
    expect(Date.now() - putAt).toBeLessThan(5_000);
  });

  it('a plain-HTTP response in flight is cut within a second of the PUT that removes its host', async () => {
    await api(gate, 'PUT', '/v1/environments/plain-cut', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'plain-cut' })).body;
    const socket = connect({ host: '127.0.0.1', port: gate.proxyPort });
    socket.on('error', () => {});
    const closedAt = new Promise<number>((done) => socket.on('close', () => done(Date.now())));
    socket.write(`GET http://api.example.com:${upstream.port}/drip/30 HTTP/1.1\r\nHost: api.example.com:${upstream.port}\r\n${basicAuth(session.id, session.token)}\r\n\r\n`);
    let head = '';
    await new Promise<void>((resolve) => socket.on('data', (c: Buffer) => ((head += c.toString('latin1')).includes('\r\n\r\n') ? resolve() : undefined)));
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const putAt = Date.now();
    await api(gate, 'PUT', '/v1/environments/plain-cut', env(['registry.npmjs.org']));
    const closed = await Promise.race([closedAt, new Promise<number>((r) => setTimeout(() => r(Infinity), 5_000))]);
    expect(closed - putAt).toBeLessThan(1_000);
  });

  it('on one kept-alive client connection, the request after a PUT is judged by the new policy', async () => {
    await api(gate, 'PUT', '/v1/environments/keepalive', env(['api.example.com', 'registry.npmjs.org']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'keepalive' })).body;
    const socket = connect({ host: '127.0.0.1', port: gate.proxyPort });
    let text = '';
    const responses = (n: number) => new Promise<void>((resolve, reject) => {
      const check = () => ((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= n ? resolve() : undefined);
      socket.on('data', check);
      socket.once('close', () => reject(new Error(`closed after: ${text}`)));
      check();
    });
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const ask = (host: string) => socket.write(`GET http://${host}:${upstream.port}/x HTTP/1.1\r\nHost: ${host}:${upstream.port}\r\n${basicAuth(session.id, session.token)}\r\n\r\n`);
    ask('registry.npmjs.org');
    await responses(1);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    await api(gate, 'PUT', '/v1/environments/keepalive', env(['api.example.com']));
    ask('registry.npmjs.org');
    await responses(2).catch(() => {});
    socket.destroy();
    const second = text.slice(text.indexOf('HTTP/1.1', 1));
    expect(second).toMatch(/^HTTP\/1\.1 403/);
    expect(second).toMatch(/x-deny-reason: host_not_allowed/i);
  });

  it("a tunnel the new policy still allows stays open", async () => {
    await api(gate, 'PUT', '/v1/environments/keep', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'keep' })).body;
    const download = await slowDownload(session);
    await api(gate, 'PUT', '/v1/environments/keep', env(['api.example.com', 'registry.npmjs.org']));
    const before = download.bytes();
    await new Promise((r) => setTimeout(r, 400));
    expect(download.bytes()).toBeGreaterThan(before);
    await api(gate, 'DELETE', `/v1/sessions/${session.id}`);
    await Promise.race([download.closedAt, new Promise((_, reject) => setTimeout(() => reject(new Error('not cut on revoke')), 2_000))]);
  });

  it("a revoked session's open tunnel is cut within a second", async () => {
    await api(gate, 'PUT', '/v1/environments/revoke', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'revoke' })).body;
    const download = await slowDownload(session);
    const at = Date.now();
    await api(gate, 'DELETE', `/v1/sessions/${session.id}`);
    expect((await download.closedAt) - at).toBeLessThan(1_000);
  });
});

describe('hand edits and reload', () => {
  it('a hand-written environment file is picked up within a few seconds', async () => {
    writeFileSync(join(gate.stateDir, 'environments', 'hand.yaml'), `access: custom\nallowedDomains: [api.example.com]\nallowedPorts: [${upstream.port}]\n`);
    await eventually(async () => (await api(gate, 'GET', '/v1/environments/hand')).status === 200, 5_000);
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'hand' })).body;
    expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
  });

  it('a broken file is refused with its errors and the last good policy stays in force', async () => {
    await api(gate, 'PUT', '/v1/environments/typo', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'typo' })).body;
    const file = join(gate.stateDir, 'environments', 'typo.yaml');
    writeFileSync(file, 'access: custom\nallowedDomains: ["a.*.com"\n');
    await new Promise((r) => setTimeout(r, 800));
    expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
    writeFileSync(file, 'access: custom\nallowedDomains: ["a.*.com"]\n');
    const reload = await api(gate, 'POST', '/v1/reload');
    expect(reload.status).toBe(400);
    expect(reload.body.errors.some((e: { path: string; message: string }) => e.path.includes('typo.yaml') && e.path.includes('allowedDomains[0]') && e.message.includes('a.*.com'))).toBe(true);
    expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
    expect(gate.logs.some((l) => l.includes('policy file refused') && l.includes('typo.yaml'))).toBe(true);
    writeFileSync(file, `access: custom\nallowedDomains: [registry.npmjs.org]\nallowedPorts: [${upstream.port}]\n`);
    expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);
    expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).headers['x-deny-reason']).toBe('host_not_allowed');
  });

  it('a broken hand edit is refused by the folder watch alone, logged with its errors and counted', async () => {
    const reloads = async (result: string) => parsePrometheusText((await api(gate, 'GET', '/metrics', undefined, null)).body).sum('egress_policy_reloads_total', { result });
    await api(gate, 'PUT', '/v1/environments/watched', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'watched' })).body;
    const failures = await reloads('failure');
    writeFileSync(join(gate.stateDir, 'environments', 'watched.yaml'), 'access: custom\nallowedDomains: ["*"]\n');
    await eventually(() => gate.logs.some((l) => l.includes('policy file refused') && l.includes('watched.yaml') && l.includes('allowedDomains[0]')), 5_000);
    expect(await reloads('failure')).toBeGreaterThan(failures);
    expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
    expect((await rawConnect(gate.proxyPort, `registry.npmjs.org:${upstream.port}`, [basicAuth(session.id, session.token)])).headers['x-deny-reason']).toBe('host_not_allowed');
    expect((await api(gate, 'GET', '/v1/environments/watched')).body.allowedDomains).toEqual(['api.example.com']);
    // An API write over the broken file puts the id back on a good footing.
    await api(gate, 'PUT', '/v1/environments/watched', env(['registry.npmjs.org']));
    expect((await rawConnect(gate.proxyPort, `registry.npmjs.org:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
  });

  it("the folder watch does not re-read the state for this process's own API writes", async () => {
    const reloads = async () => parsePrometheusText((await api(gate, 'GET', '/metrics', undefined, null)).body).sum('egress_policy_reloads_total');
    await api(gate, 'PUT', '/v1/environments/quiet', env(['api.example.com']));
    await new Promise((r) => setTimeout(r, 800));
    const before = await reloads();
    for (let i = 0; i < 5; i++) await api(gate, 'PUT', '/v1/environments/quiet', env([`v${i}.example.com`]));
    await api(gate, 'DELETE', '/v1/environments/quiet');
    await new Promise((r) => setTimeout(r, 800));
    expect(await reloads()).toBe(before);
    // A hand edit of the same file is still seen.
    writeFileSync(join(gate.stateDir, 'environments', 'quiet.yaml'), 'access: none\n');
    await eventually(async () => (await api(gate, 'GET', '/v1/environments/quiet')).status === 200, 5_000);
    expect(await reloads()).toBe(before + 1);
  });

  it('temporary files (dot-files, as the atomic writer makes) are not read as policy', async () => {
    writeFileSync(join(gate.stateDir, 'environments', '.sneaky.yaml.0123.tmp'), 'access: full\n');
    writeFileSync(join(gate.stateDir, 'environments', '.sneaky.yaml'), 'access: full\n');
    await new Promise((r) => setTimeout(r, 800));
    expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);
    expect((await api(gate, 'GET', '/v1/environments/sneaky')).status).toBe(404);
  });
});

describe('POST /v1/reload re-reads the config file', () => {
  const config = () => parse(readFileSync(gate.configFile, 'utf8')) as Record<string, any>;
  const rewrite = (change: (c: Record<string, any>) => void) => {
    const next = config();
    change(next);
    writeFileSync(gate.configFile, stringify(next));
  };

  it('environments and alwaysAllow from the config apply at once; other changed keys are named for a restart', async () => {
    const original = readFileSync(gate.configFile, 'utf8');
    try {
      rewrite((c) => {
        c.environments = [{ id: 'from-config', access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [upstream.port] }];
        c.defaults.alwaysAllow = ['api.anthropic.com', 'registry.npmjs.org'];
        c.proxy.idleTimeoutMs = 60_000;
      });
      const reload = await api(gate, 'POST', '/v1/reload');
      expect(reload.status).toBe(200);
      expect(reload.body.restartNeeded).toEqual(['proxy.idleTimeoutMs']);
      expect(gate.logs.some((l) => l.includes('next restart') && l.includes('proxy.idleTimeoutMs'))).toBe(true);
      expect((await api(gate, 'GET', '/v1/defaults')).body.alwaysAllow).toEqual(['api.anthropic.com', 'registry.npmjs.org']);
      const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'from-config' })).body;
      expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
      // alwaysAllow is reachable at every level: the new entry is live too.
      expect((await rawConnect(gate.proxyPort, `registry.npmjs.org:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);

      rewrite((c) => {
        c.environments = [];
        c.defaults.alwaysAllow = ['api.anthropic.com'];
      });
      expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);
      expect((await api(gate, 'GET', '/v1/environments/from-config')).status).toBe(404);
      expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).headers['x-deny-reason']).toBe('auth_invalid');
    } finally {
      writeFileSync(gate.configFile, original);
      await api(gate, 'POST', '/v1/reload');
    }
  });

  it('a broken config file answers 400 with the file and key path, and the last good policy stays', async () => {
    const original = readFileSync(gate.configFile, 'utf8');
    await api(gate, 'PUT', '/v1/environments/steady', env(['api.example.com']));
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'steady' })).body;
    try {
      for (const [change, path] of [
        [(c: Record<string, any>) => (c.defaults.alwaysAllow = ['*.com']), 'defaults.alwaysAllow[0]'],
        [(c: Record<string, any>) => (c.proxy.bogus = 1), 'proxy.bogus'],
        [(c: Record<string, any>) => (c.environments = [{ id: 'x', access: 'sometimes' }]), 'environments[0].access'],
      ] as const) {
        writeFileSync(gate.configFile, original);
        rewrite(change);
        const reload = await api(gate, 'POST', '/v1/reload');
        expect(reload.status).toBe(400);
        expect(reload.body.error).toMatch(/last good policy/);
        expect(reload.body.errors.some((e: { path: string }) => e.path.startsWith(gate.configFile) && e.path.endsWith(path)), JSON.stringify(reload.body)).toBe(true);
        expect((await rawConnect(gate.proxyPort, `api.example.com:${upstream.port}`, [basicAuth(session.id, session.token)])).status).toBe(200);
        expect((await api(gate, 'GET', '/v1/defaults')).body.alwaysAllow).toEqual(['api.anthropic.com']);
      }
      writeFileSync(gate.configFile, 'proxy: [unclosed\n');
      const reload = await api(gate, 'POST', '/v1/reload');
      expect(reload.status).toBe(400);
      expect(reload.body.errors[0].path).toContain(gate.configFile);
    } finally {
      writeFileSync(gate.configFile, original);
    }
    expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);
  });
});
