// The admin API against the real server: every route, every error path, and policy changes
// that take effect for the very next request through the proxy.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { adminToken, api } from '../helpers/admin.js';
import { egressGate } from '../cli/cli.js';
import { cleanEnv, run } from '../helpers/run.js';
import { startGate, type Gate } from '../helpers/gate.js';
import { basicAuth, parseResponseHead, rawConnect, rawExchange } from '../helpers/raw.js';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.js';

let gate: Gate;
let upstream: Upstream;
const names = ['api.example.com', 'registry.npmjs.org', 'other.example.com'];

beforeAll(async () => {
  upstream = await startHttpUpstream();
  gate = await startGate({
    config: { auth: { required: true }, upstream: { resolve: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])), allowPrivateNetworks: ['127.0.0.1/32'] } },
  });
});

afterAll(async () => {
  await gate?.stop();
  await upstream?.close();
});

const env = (id: string, extra: Record<string, unknown> = {}) => ({ name: id, access: 'custom', allowedDomains: ['api.example.com'], allowedPorts: [upstream.port], ...extra });

async function status(proxyUrl: { id: string; token: string }, host: string): Promise<string> {
  const response = await rawConnect(gate.proxyPort, `${host}:${upstream.port}`, [basicAuth(proxyUrl.id, proxyUrl.token)]);
  return response.status === 200 ? 'allowed' : (response.headers['x-deny-reason'] ?? String(response.status));
}

describe('authentication', () => {
  it('/healthz and /metrics are open', async () => {
    expect(await api(gate, 'GET', '/healthz', undefined, null)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const metrics = await api(gate, 'GET', '/metrics', undefined, null);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('egress_requests_total');
  });

  it.each([
    ['missing', null],
    ['wrong', 'not-the-token'],
    ['empty', ''],
  ])('%s token: 401 with a JSON message', async (_name, token) => {
    const answer = await api(gate, 'GET', '/v1/environments', undefined, token);
    expect(answer.status).toBe(401);
    expect(answer.body.error).toMatch(/bearer token/);
  });
});

describe('every route but /healthz and /metrics needs the token', () => {
  it.each([
    ['GET', '/v1/environments', undefined],
    ['GET', '/v1/environments/web', undefined],
    ['PUT', '/v1/environments/web', { access: 'full' }],
    ['PUT', '/v1/environments/web', { access: 'not even valid' }],
    ['PATCH', '/v1/environments/web', { add: { allowedDomains: ['x.example.com'] } }],
    ['DELETE', '/v1/environments/web', undefined],
    ['POST', '/v1/environments/web/archive', undefined],
    ['POST', '/v1/environments/web/unarchive', undefined],
    ['POST', '/v1/sessions', { environment: 'web' }],
    ['GET', '/v1/sessions/ses_x', undefined],
    ['DELETE', '/v1/sessions/ses_x', undefined],
    ['GET', '/v1/check?environment=web&url=example.com', undefined],
    ['POST', '/v1/reload', undefined],
    ['GET', '/v1/defaults', undefined],
    ['GET', '/v1/ca.pem', undefined],
    ['GET', '/v1/nothing-here', undefined],
    ['GET', '/healthz/', undefined],
    ['GET', '/%68ealthz', undefined],
  ])('%s %s without a token: 401, before anything else is looked at', async (method, path, body) => {
    for (const token of [null, 'wrong', `${adminToken} `.repeat(2)]) {
      const answer = await api(gate, method, path, body, token);
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(answer.body.error).toMatch(/bearer token/);
    }
    expect((await api(gate, 'GET', '/v1/environments/web', undefined)).status).toBe(404);
  });

  it.each([
    ['lower-case scheme', `bearer ${adminToken}`, 200],
    ['Basic scheme', `Basic ${Buffer.from(`x:${adminToken}`).toString('base64')}`, 401],
    ['token alone', adminToken, 401],
    ['prefix of the token', `Bearer ${adminToken.slice(0, -1)}`, 401],
  ])('%s → %i', async (_name, header, expected) => {
    const response = await fetch(`${gate.adminUrl}/v1/environments`, { headers: { authorization: header } });
    expect(response.status).toBe(expected);
    await response.arrayBuffer();
  });
});

describe('environments and sessions change the wire at once', () => {
  it('a session created through the API is allowed and refused as its environment says; a PUT changes that for the very next request', async () => {
    expect((await api(gate, 'PUT', '/v1/environments/web', env('web'))).status).toBe(201);
    const created = await api(gate, 'POST', '/v1/sessions', { environment: 'web' });
    expect(created.status).toBe(201);
    expect(created.body.proxyUrl).toBe(`http://${created.body.id}:${created.body.token}@127.0.0.1:${gate.proxyPort}`);
    const session = created.body as { id: string; token: string };
    expect(await status(session, 'api.example.com')).toBe('allowed');
    expect(await status(session, 'registry.npmjs.org')).toBe('host_not_allowed');

    expect((await api(gate, 'PUT', '/v1/environments/web', env('web', { allowedDomains: ['registry.npmjs.org'] }))).status).toBe(200);
    expect(await status(session, 'registry.npmjs.org')).toBe('allowed');
    expect(await status(session, 'api.example.com')).toBe('host_not_allowed');

    expect((await api(gate, 'PUT', '/v1/environments/web', env('web', { access: 'trusted' }))).status).toBe(200);
    expect(await status(session, 'registry.npmjs.org')).toBe('allowed');
    expect(await status(session, 'other.example.com')).toBe('host_not_allowed');
  });

  it('curl with the proxyUrl exactly as the API returned it: allowed and refused as the environment says, tunnelled or not', async () => {
    await api(gate, 'PUT', '/v1/environments/curl-env', env('curl-env'));
    const { proxyUrl } = (await api(gate, 'POST', '/v1/sessions', { environment: 'curl-env' })).body as { proxyUrl: string };
    const curl = (flags: string[], host: string) =>
      run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_connect}', ...flags, '-x', proxyUrl, `http://${host}:${upstream.port}/`], { env: cleanEnv() });
    expect((await curl([], 'api.example.com')).stdout).toBe('200 000');
    expect((await curl(['-p'], 'api.example.com')).stdout).toBe('200 200');
    expect((await curl([], 'registry.npmjs.org')).stdout).toBe('403 000');
    const tunnel = await curl(['-p'], 'registry.npmjs.org');
    expect(tunnel.stdout).toMatch(/ 403$/);
    expect((await api(gate, 'PUT', '/v1/environments/curl-env', env('curl-env', { allowedDomains: ['registry.npmjs.org'] }))).status).toBe(200);
    expect((await curl(['-p'], 'registry.npmjs.org')).stdout).toBe('200 200');
    expect((await curl([], 'api.example.com')).stdout).toBe('403 000');
  });

  it('reads back environments and sessions, never the token', async () => {
    await api(gate, 'PUT', '/v1/environments/readable', env('readable'));
    const got = await api(gate, 'GET', '/v1/environments/readable');
    expect(got.body).toMatchObject({ id: 'readable', access: 'custom', allowedDomains: ['api.example.com'], archived: false });
    const list = await api(gate, 'GET', '/v1/environments');
    expect(list.body.environments.map((e: { id: string }) => e.id)).toContain('readable');
    const created = await api(gate, 'POST', '/v1/sessions', { environment: 'readable' });
    const session = await api(gate, 'GET', `/v1/sessions/${created.body.id}`);
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ id: created.body.id, environment: 'readable' });
    expect(JSON.stringify(session.body)).not.toContain(created.body.token);
    expect(session.body.tokenHash).toBeUndefined();
  });

  it('archive hides, keeps sessions working, refuses new ones (409); unarchive restores', async () => {
    await api(gate, 'PUT', '/v1/environments/old', env('old'));
    const before = (await api(gate, 'POST', '/v1/sessions', { environment: 'old' })).body;
    expect((await api(gate, 'POST', '/v1/environments/old/archive')).body.archived).toBe(true);
    expect((await api(gate, 'GET', '/v1/environments')).body.environments.map((e: { id: string }) => e.id)).not.toContain('old');
    expect((await api(gate, 'GET', '/v1/environments?archived=true')).body.environments.map((e: { id: string }) => e.id)).toContain('old');
    expect(await status(before, 'api.example.com')).toBe('allowed');
    const refused = await api(gate, 'POST', '/v1/sessions', { environment: 'old' });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/archived/);
    expect((await api(gate, 'POST', '/v1/environments/old/unarchive')).body.archived).toBe(false);
    expect((await api(gate, 'POST', '/v1/sessions', { environment: 'old' })).status).toBe(201);
  });

  it('revoking a session refuses it at once, on a kept-alive socket too', async () => {
    await api(gate, 'PUT', '/v1/environments/rev', env('rev'));
    const s = (await api(gate, 'POST', '/v1/sessions', { environment: 'rev' })).body;
    expect(await status(s, 'api.example.com')).toBe('allowed');
    expect((await api(gate, 'DELETE', `/v1/sessions/${s.id}`)).status).toBe(204);
    expect(await status(s, 'api.example.com')).toBe('auth_invalid');
    expect((await api(gate, 'DELETE', `/v1/sessions/${s.id}`)).status).toBe(404);
    expect((await api(gate, 'GET', `/v1/sessions/${s.id}`)).status).toBe(404);
  });

  it('deleting an environment stops its sessions, and a new environment of the same id does not revive them', async () => {
    await api(gate, 'PUT', '/v1/environments/gone', env('gone'));
    const s = (await api(gate, 'POST', '/v1/sessions', { environment: 'gone' })).body;
    expect(await status(s, 'api.example.com')).toBe('allowed');
    expect((await api(gate, 'DELETE', '/v1/environments/gone')).status).toBe(204);
    expect(await status(s, 'api.example.com')).toBe('auth_invalid');
    await api(gate, 'PUT', '/v1/environments/gone', env('gone'));
    expect(await status(s, 'api.example.com')).toBe('auth_invalid');
    expect((await api(gate, 'GET', '/v1/sessions/' + s.id)).status).toBe(404);
  });

  it('/v1/check gives the decision the wire gives, with the matching entry', async () => {
    await api(gate, 'PUT', '/v1/environments/chk', env('chk', { allowedDomains: ['*.example.com'], deniedDomains: ['other.example.com'] }));
    const s = (await api(gate, 'POST', '/v1/sessions', { environment: 'chk' })).body;
    for (const host of names) {
      const check = await api(gate, 'GET', `/v1/check?environment=chk&url=${encodeURIComponent(`${host}:${upstream.port}`)}`);
      expect(check.status).toBe(200);
      expect(check.body.reason).toBe(await status(s, host));
    }
    const allowed = await api(gate, 'GET', `/v1/check?environment=chk&url=${encodeURIComponent(`https://api.example.com:${upstream.port}/x`)}`);
    expect(allowed.body).toMatchObject({ decision: 'allow', reason: 'allowed', rule: '*.example.com', host: 'api.example.com', port: upstream.port });
    const metadata = await api(gate, 'GET', `/v1/check?environment=chk&url=${encodeURIComponent('http://169.254.169.254/latest/meta-data')}`);
    expect(metadata.body).toMatchObject({ decision: 'deny', reason: 'private_address' });
  });

  it('/v1/defaults lists the Trusted list', async () => {
    const defaults = await api(gate, 'GET', '/v1/defaults');
    expect(defaults.body.domains).toEqual(expect.arrayContaining(['registry.npmjs.org', '*.gcr.io', 'gcr.io']));
    expect(defaults.body.alwaysAllow).toEqual(['api.anthropic.com']);
  });

  it('a plain-HTTP keep-alive request is refused on the next request after a PUT removes its host', async () => {
    await api(gate, 'PUT', '/v1/environments/ka', env('ka'));
    const s = (await api(gate, 'POST', '/v1/sessions', { environment: 'ka' })).body;
    const auth = basicAuth(s.id, s.token);
    const first = parseResponseHead(await rawExchange(gate.proxyPort, `GET http://api.example.com:${upstream.port}/a HTTP/1.1\r\nHost: api.example.com:${upstream.port}\r\n${auth}\r\nConnection: close\r\n\r\n`));
    expect(first.status).toBe(200);
    await api(gate, 'PUT', '/v1/environments/ka', env('ka', { allowedDomains: ['registry.npmjs.org'] }));
    const second = parseResponseHead(await rawExchange(gate.proxyPort, `GET http://api.example.com:${upstream.port}/b HTTP/1.1\r\nHost: api.example.com:${upstream.port}\r\n${auth}\r\nConnection: close\r\n\r\n`));
    expect(second.headers['x-deny-reason']).toBe('host_not_allowed');
  });
});

describe('PATCH edits the domain lists', () => {
  it('an added entry is allowed and a removed one refused on the very next request; the edit is on disk; repeating it changes nothing', async () => {
    expect((await api(gate, 'PUT', '/v1/environments/edits', env('edits'))).status).toBe(201);
    const session = (await api(gate, 'POST', '/v1/sessions', { environment: 'edits' })).body as { id: string; token: string };
    expect(await status(session, 'other.example.com')).toBe('host_not_allowed');

    const added = await api(gate, 'PATCH', '/v1/environments/edits', { add: { allowedDomains: ['other.example.com', '*.example.org'] } });
    expect(added).toMatchObject({ status: 200, body: { id: 'edits', allowedDomains: { added: ['other.example.com', '*.example.org'], removed: [], entries: 3 }, deniedDomains: { added: [], removed: [], entries: 0 } } });
    expect(await status(session, 'other.example.com')).toBe('allowed');
    expect(await status(session, 'api.example.com')).toBe('allowed');

    const edited = await api(gate, 'PATCH', '/v1/environments/edits', { remove: { allowedDomains: ['api.example.com', 'never.example.com'] }, add: { deniedDomains: ['registry.npmjs.org'] } });
    expect(edited.body).toMatchObject({ allowedDomains: { added: [], removed: ['api.example.com'], entries: 2 }, deniedDomains: { added: ['registry.npmjs.org'], entries: 1 } });
    expect(await status(session, 'api.example.com')).toBe('host_not_allowed');
    expect(await status(session, 'other.example.com')).toBe('allowed');

    // Every other key of the policy is as it was.
    const read = (await api(gate, 'GET', '/v1/environments/edits')).body;
    expect(read).toEqual({ ...read, access: 'custom', allowedDomains: ['other.example.com', '*.example.org'], deniedDomains: ['registry.npmjs.org'], allowedPorts: [upstream.port] });
    // What the state file holds survives a re-read of every file.
    const onDisk = JSON.parse(readFileSync(join(gate.stateDir, 'environments', 'edits.yaml'), 'utf8'));
    expect(onDisk.allowedDomains).toEqual(['other.example.com', '*.example.org']);
    expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);
    expect((await api(gate, 'GET', '/v1/environments/edits')).body.allowedDomains).toEqual(['other.example.com', '*.example.org']);

    const again = await api(gate, 'PATCH', '/v1/environments/edits', { add: { allowedDomains: ['other.example.com'] }, remove: { allowedDomains: ['api.example.com'] } });
    expect(again.body).toMatchObject({ allowedDomains: { added: [], removed: [], entries: 2 } });
  });

  it('a long list edited by PATCH and PUT is on disk exactly as JSON writes the policy, after every change', async () => {
    const file = join(gate.stateDir, 'environments', 'long.yaml');
    const onDiskIsPolicy = async () => {
      const policy = (await api(gate, 'GET', '/v1/environments/long')).body;
      expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(policy, null, 2)}\n`);
      return policy as { allowedDomains: string[] };
    };
    const hosts = Array.from({ length: 1500 }, (_, i) => `h${i}.long.example.com`);
    expect((await api(gate, 'PUT', '/v1/environments/long', env('long', { allowedDomains: ['bücher.example', ...hosts] }))).status).toBe(201);
    await onDiskIsPolicy();
    await api(gate, 'PATCH', '/v1/environments/long', { add: { allowedDomains: ['*.例え.jp'] }, remove: { allowedDomains: ['h700.long.example.com'] } });
    expect((await onDiskIsPolicy()).allowedDomains).toHaveLength(1501);
    const replaced = ['bücher.example', ...hosts.slice(0, 900), 'middle.example.com', ...hosts.slice(901), '*.例え.jp'];
    expect((await api(gate, 'PUT', '/v1/environments/long', env('long', { allowedDomains: replaced }))).status).toBe(200);
    expect((await onDiskIsPolicy()).allowedDomains).toEqual(replaced);
    expect((await api(gate, 'POST', '/v1/reload')).status).toBe(200);
    expect((await onDiskIsPolicy()).allowedDomains).toEqual(replaced);
  });

  it('concurrent edits of one environment all land', async () => {
    await api(gate, 'PUT', '/v1/environments/crowd', env('crowd'));
    const hosts = Array.from({ length: 25 }, (_, i) => `h${i}.crowd.example.com`);
    const answers = await Promise.all(hosts.map((h) => api(gate, 'PATCH', '/v1/environments/crowd', { add: { allowedDomains: [h] } })));
    expect(answers.map((a) => a.status)).toEqual(hosts.map(() => 200));
    const list = (await api(gate, 'GET', '/v1/environments/crowd')).body.allowedDomains as string[];
    expect([...list].sort()).toEqual(['api.example.com', ...hosts].sort());
  });

  it('a bad edit is refused with the path of every error and changes nothing', async () => {
    await api(gate, 'PUT', '/v1/environments/bad-edit', env('bad-edit'));
    const refused = await api(gate, 'PATCH', '/v1/environments/bad-edit', { add: { allowedDomains: ['ok.example.com', '*.com', 7], ports: [1] }, rename: {} });
    expect(refused.status).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['add.allowedDomains[1]', 'add.allowedDomains[2]', 'add.ports', 'rename'].sort());
    expect((await api(gate, 'GET', '/v1/environments/bad-edit')).body.allowedDomains).toEqual(['api.example.com']);
    expect((await api(gate, 'PATCH', '/v1/environments/nope', { add: { allowedDomains: ['a.example.com'] } })).status).toBe(404);
    expect((await api(gate, 'PATCH', '/v1/environments/bad-edit', [1, 2])).status).toBe(400);
  });
});

describe('PUT with Prefer: return=minimal', () => {
  it('answers the id alone, with Preference-Applied, and the policy is in force as with the full answer', async () => {
    const put = async (body: unknown, prefer: string) =>
      fetch(`${gate.adminUrl}/v1/environments/minimal`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', prefer }, body: JSON.stringify(body) });
    const created = await put(env('minimal'), 'respond-async, return=minimal');
    expect(created.status).toBe(201);
    expect(created.headers.get('preference-applied')).toBe('return=minimal');
    expect(await created.json()).toEqual({ id: 'minimal' });
    const replaced = await put(env('minimal', { allowedDomains: ['other.example.com'] }), 'return = minimal');
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toEqual({ id: 'minimal' });
    expect((await api(gate, 'GET', '/v1/environments/minimal')).body.allowedDomains).toEqual(['other.example.com']);
    const check = await api(gate, 'GET', '/v1/check?environment=minimal&url=http://other.example.com:' + upstream.port + '/');
    expect(check.body.decision).toBe('allow');
    // Any other preference gets the policy back, as without the header.
    const full = await put(env('minimal'), 'return=representation');
    expect(full.headers.get('preference-applied')).toBeNull();
    expect((await full.json()).allowedDomains).toEqual(['api.example.com']);
  });
});

describe('error paths', () => {
  it.each([
    ['GET', '/v1/environments/nope', undefined, 404, /unknown environment "nope"/],
    ['DELETE', '/v1/environments/nope', undefined, 404, /unknown environment/],
    ['POST', '/v1/environments/nope/archive', undefined, 404, /unknown environment/],
    ['GET', '/v1/sessions/nope', undefined, 404, /unknown session/],
    ['POST', '/v1/sessions', { environment: 'nope' }, 404, /unknown environment/],
    ['GET', '/v1/environments/Bad%20Id', undefined, 400, /invalid request/],
    ['PUT', '/v1/environments/' + 'x'.repeat(65), { access: 'full' }, 400, /invalid request/],
    ['POST', '/v1/sessions', {}, 400, /invalid request/],
    ['POST', '/v1/sessions', { environment: 'web', extra: 1 }, 400, /invalid request/],
    ['GET', '/v1/check?environment=web', undefined, 400, /invalid request/],
    ['GET', '/v1/check?environment=nope&url=example.com', undefined, 404, /unknown environment/],
    ['GET', '/v1/check?environment=web&url=exa%20mple.com', undefined, 400, /url:/],
    ['GET', '/v1/nothing-here', undefined, 404, /no route/],
    ['PUT', '/v1/environments/web', '{not json', 400, /.+/],
    ['PUT', '/v1/environments/web', ['access', 'full'], 400, /invalid request/],
    ['PUT', '/v1/environments/web', 'null', 400, /.+/],
    ['PUT', '/v1/environments/nope', undefined, 400, /.+/],
    ['PUT', '/v1/environments/Web', { access: 'full' }, 400, /invalid request/],
    ['PUT', '/v1/environments/..%2Fsessions%2Fx', { access: 'full' }, 400, /invalid request/],
    ['DELETE', '/v1/environments/a.b', undefined, 400, /invalid request/],
    ['POST', '/v1/environments/UPPER/archive', undefined, 400, /invalid request/],
    ['POST', '/v1/environments/UPPER/unarchive', undefined, 400, /invalid request/],
    ['POST', '/v1/environments/nope/unarchive', undefined, 404, /unknown environment/],
    ['GET', '/v1/sessions/ses%20x', undefined, 400, /invalid request/],
    ['DELETE', '/v1/sessions/' + 'x'.repeat(65), undefined, 400, /invalid request/],
    ['DELETE', '/v1/sessions/nope', undefined, 404, /unknown session/],
    ['POST', '/v1/sessions', { environment: '../web' }, 400, /invalid request/],
    ['GET', '/v1/check?environment=Bad%20Id&url=example.com', undefined, 400, /invalid request/],
    ['GET', '/v1/check?url=example.com', undefined, 400, /invalid request/],
    ['GET', '/v1/environments?archived=perhaps', undefined, 400, /invalid request/],
  ])('%s %s → %i', async (method, path, body, expected, message) => {
    const answer = await api(gate, method as string, path as string, body);
    expect(answer.status).toBe(expected);
    expect(answer.body.error).toMatch(message as RegExp);
  });

  it('400 answers name the path of what was wrong', async () => {
    const badId = await api(gate, 'GET', '/v1/environments/Bad%20Id');
    expect(badId.body.errors).toEqual([expect.objectContaining({ path: 'params.id', message: expect.stringContaining('pattern') })]);
    const session = await api(gate, 'POST', '/v1/sessions', { extra: 1 });
    expect(session.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['body.environment', 'body.extra']));
  });

  it('a body id that is not the URL id is refused; a matching one is accepted', async () => {
    const other = await api(gate, 'PUT', '/v1/environments/named', { id: 'other', access: 'full' });
    expect(other.status).toBe(400);
    expect(other.body.errors).toEqual([expect.objectContaining({ path: 'id' })]);
    expect((await api(gate, 'GET', '/v1/environments/other')).status).toBe(404);
    expect((await api(gate, 'PUT', '/v1/environments/named', { id: 'named', access: 'full' })).status).toBe(201);
    expect((await api(gate, 'GET', '/v1/environments/named')).body).toMatchObject({ id: 'named', access: 'full' });
  });

  it.each([
    ['text/plain', 'access: full', 400, /invalid request/],
    ['application/x-www-form-urlencoded', 'access=full', 415, /unsupported media type/i],
    ['application/json', '', 400, /invalid request/],
    [undefined, undefined, 400, /invalid request/],
  ])('a PUT body of %s %j: %i', async (type, body, expected, message) => {
    const headers: Record<string, string> = { authorization: `Bearer ${adminToken}` };
    if (type) headers['content-type'] = type;
    const response = await fetch(`${gate.adminUrl}/v1/environments/web`, { method: 'PUT', headers, body });
    expect(response.status).toBe(expected);
    expect((await response.json()).error).toMatch(message);
  });

  it('a POST that takes no body accepts an empty one sent as JSON', async () => {
    await api(gate, 'PUT', '/v1/environments/empty-body', env('empty-body'));
    const response = await fetch(`${gate.adminUrl}/v1/environments/empty-body/archive`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '' });
    expect(response.status).toBe(200);
    expect((await response.json()).archived).toBe(true);
  });

  it('__proto__ in a body is refused, not merged', async () => {
    const answer = await api(gate, 'PUT', '/v1/environments/proto', '{"access":"full","__proto__":{"archived":true}}');
    expect(answer.status).toBe(400);
    expect((await api(gate, 'GET', '/v1/environments/proto')).status).toBe(404);
  });

  it('an invalid environment body gets 400 with every error and its path, and changes nothing', async () => {
    await api(gate, 'PUT', '/v1/environments/strict', env('strict'));
    const answer = await api(gate, 'PUT', '/v1/environments/strict', { id: 'other', access: 'sometimes', allowedDomains: ['ok.example.com', 'a.*.com', '*.com'], allowedPorts: [0], rateLimit: { burst: -1 }, bogus: true });
    expect(answer.status).toBe(400);
    const paths = answer.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['id', 'access', 'allowedDomains[1]', 'allowedDomains[2]', 'allowedPorts[0]', 'rateLimit.burst', 'bogus']));
    expect(answer.body.errors.find((e: { path: string }) => e.path === 'allowedDomains[1]').message).toContain('a.*.com');
    expect((await api(gate, 'GET', '/v1/environments/strict')).body.access).toBe('custom');
  });

  it('GET /v1/ca.pem says how to create the CA when there is none, then serves the one `ca init` made', async () => {
    const answer = await api(gate, 'GET', '/v1/ca.pem');
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatch(/ca init/);
    const init = await egressGate(['ca', 'init', '--config', gate.configFile]);
    expect(init.code, init.stderr).toBe(0);
    const pem = await api(gate, 'GET', '/v1/ca.pem');
    expect(pem.status).toBe(200);
    expect(pem.body).toContain('-----BEGIN CERTIFICATE-----');
    expect(pem.body).toBe(readFileSync(join(dirname(gate.configFile), 'certs', 'ca.pem'), 'utf8'));
    expect(pem.body).not.toContain('PRIVATE KEY');
  });
});
