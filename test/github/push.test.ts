// The GitHub proxy end to end: a real git client, through egress-gate with TLS inspection, to a
// real smart-HTTP git server (git http-backend) standing in for github.com. The sandbox holds
// only a scoped credential; the upstream sees only the operator's real one; pushes reach only
// the session's branches.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa } from '../../src/inspect/ca.js';
import { api } from '../helpers/admin.js';
import { createTestCa } from '../helpers/certs.js';
import { startGate, tempDir, type Gate } from '../helpers/gate.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { cleanEnv, run } from '../helpers/run.js';

const REAL = `ghp_${'R3alOperatorT0ken'.padEnd(36, 'x')}`;
const realAuthorization = `Basic ${Buffer.from(`x-access-token:${REAL}`).toString('base64')}`;

let gate: Gate;
let git: GitServer;
let caFile: string;
let session: { id: string; token: string; proxyUrl: string; gitToken: string };
const answers: string[] = [];

function gitEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv({ GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', HOME: mkdtempSync(join(tmpdir(), 'egress-home-')), GIT_AUTHOR_NAME: 's', GIT_AUTHOR_EMAIL: 's@example.test', GIT_COMMITTER_NAME: 's', GIT_COMMITTER_EMAIL: 's@example.test' });
  delete env.GIT_SSL_CAINFO;
  return env;
}

function sandboxGit(args: string[], cwd?: string) {
  return run('git', ['-c', `http.proxy=${session.proxyUrl}`, '-c', `http.sslCAInfo=${caFile}`, ...args], { env: gitEnv(), cwd, timeoutMs: 30_000 });
}

const remote = (repo: string, token = session.gitToken): string => `https://x-access-token:${token}@github.com:${git.port}/${repo}.git`;

async function cloneApp(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'egress-clone-')), 'app');
  const cloned = await sandboxGit(['clone', '-q', remote('acme/app'), dir]);
  expect(cloned.code, cloned.stderr).toBe(0);
  return dir;
}

async function commit(dir: string, file: string): Promise<void> {
  writeFileSync(join(dir, file), `${file}\n`);
  await run('git', ['-C', dir, 'add', '.'], { env: gitEnv() });
  await run('git', ['-C', dir, 'commit', '-q', '-m', file], { env: gitEnv() });
}

beforeAll(async () => {
  const dir = tempDir();
  const upstreamCa = createTestCa();
  git = await startGitServer(upstreamCa.issue(['github.com']), realAuthorization);
  await git.createRepo('acme', 'app');
  await git.createRepo('acme', 'secret-other');
  const upstreamCaFile = join(dir, 'upstream-ca.pem');
  writeFileSync(upstreamCaFile, upstreamCa.certPem);
  const credentialFile = join(dir, 'github-token');
  writeFileSync(credentialFile, `${REAL}\n`, { mode: 0o600 });
  const init = await initCa(join(dir, 'certs'));
  if (!init.ok) throw new Error(init.error);
  caFile = init.files.cert;
  gate = await startGate({
    config: {
      auth: { required: true },
      github: { credentialFile },
      upstream: { resolve: { 'github.com': '127.0.0.1' }, allowPrivateNetworks: ['127.0.0.1/32'], caFiles: [upstreamCaFile] },
      inspection: { caDir: join(dir, 'certs') },
    },
    environments: [{ id: 'dev', access: 'trusted', allowedPorts: [git.port] }],
  });
  const created = await api(gate, 'POST', '/v1/sessions', { environment: 'dev', git: { repositories: ['acme/app'], branches: ['refs/heads/claude/*'] } });
  expect(created.status).toBe(201);
  answers.push(JSON.stringify(created.body));
  session = created.body;
});

afterAll(async () => {
  await gate?.stop();
  await git?.close();
});

describe('fetch and clone', () => {
  it('clones and fetches an in-scope repository', async () => {
    const dir = await cloneApp();
    const fetched = await sandboxGit(['-C', dir, 'fetch', '-q', 'origin']);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect((await run('git', ['-C', dir, 'log', '--format=%s'], { env: gitEnv() })).stdout.trim()).toBe('first');
  });

  it('refuses an out-of-scope repository before the upstream sees it', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'egress-clone-')), 'other');
    const cloned = await sandboxGit(['clone', '-q', remote('acme/secret-other'), dir]);
    expect(cloned.code).not.toBe(0);
    expect(cloned.stderr).toMatch(/403/);
    expect(git.requests.some((r) => r.includes('secret-other'))).toBe(false);
  });

  it('refuses any credential but the session’s own scoped one', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'egress-clone-')), 'x');
    const wrong = await sandboxGit(['clone', '-q', remote('acme/app', `egs_${'x'.repeat(43)}`), dir]);
    expect(wrong.code).not.toBe(0);
    const pasted = await sandboxGit(['clone', '-q', remote('acme/app', REAL), `${dir}2`]);
    expect(pasted.code).not.toBe(0);
  });
});

describe('push', () => {
  it("lands a push to the session's branch", async () => {
    const dir = await cloneApp();
    await run('git', ['-C', dir, 'checkout', '-q', '-b', 'claude/work', 'origin/claude/work'], { env: gitEnv() });
    await commit(dir, 'feature.txt');
    const pushed = await sandboxGit(['-C', dir, 'push', 'origin', 'claude/work']);
    expect(pushed.code, pushed.stderr).toBe(0);
    const head = (await run('git', ['-C', dir, 'rev-parse', 'HEAD'], { env: gitEnv() })).stdout.trim();
    expect(await git.refs('acme', 'app')).toContain(`refs/heads/claude/work ${head}`);
  });

  it.each([
    ['main', (dir: string) => sandboxGit(['-C', dir, 'push', 'origin', 'HEAD:main']), /push to refs\/heads\/main refused by egress-gate: this session may push only to refs\/heads\/claude\/\*/],
    ['a tag', (dir: string) => run('git', ['-C', dir, 'tag', 'v2'], { env: gitEnv() }).then(() => sandboxGit(['-C', dir, 'push', 'origin', 'v2'])), /refs\/tags\/v2 refused by egress-gate/],
    ['a deletion', (dir: string) => sandboxGit(['-C', dir, 'push', 'origin', ':claude/work']), /may not delete refs/],
    [
      'a force-push',
      // History that does not contain the branch's tip: a rewrite, which only --force can push.
      async (dir: string) => {
        await run('git', ['-C', dir, 'checkout', '-q', '--orphan', 'rewrite'], { env: gitEnv() });
        await run('git', ['-C', dir, 'commit', '-q', '-m', 'rewritten history'], { env: gitEnv() });
        return sandboxGit(['-C', dir, 'push', '-f', 'origin', 'HEAD:claude/work']);
      },
      /not a fast-forward/,
    ],
  ])('refuses %s with a message git shows, and the upstream refs stay as they were', async (_name, push, message) => {
    const dir = await cloneApp();
    await run('git', ['-C', dir, 'checkout', '-q', '-b', 'claude/work', 'origin/claude/work'], { env: gitEnv() });
    await commit(dir, `change-${Math.random().toString(36).slice(2)}.txt`);
    const before = await git.refs('acme', 'app');
    const pushed = await push(dir);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toMatch(/remote rejected/);
    expect(pushed.stderr).toMatch(message);
    expect(await git.refs('acme', 'app')).toBe(before);
  });
});

describe('the real credential', () => {
  it('is what the upstream saw, and never appears in the sandbox, the logs or an API answer', async () => {
    const seen = git.authorizations.filter(Boolean);
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([realAuthorization]));
    expect(git.authorizations.join('\n')).not.toContain(session.gitToken);
    answers.push(JSON.stringify((await api(gate, 'GET', `/v1/sessions/${session.id}`)).body));
    answers.push(JSON.stringify((await api(gate, 'GET', '/v1/environments/dev')).body));
    for (const text of [...answers, gate.logs.join('\n'), JSON.stringify(gitEnv())]) {
      expect(text).not.toContain(REAL);
      expect(text).not.toContain(Buffer.from(`x-access-token:${REAL}`).toString('base64'));
    }
    expect(JSON.parse(answers[1]!).git).toEqual({ repositories: ['acme/app'], branches: ['refs/heads/claude/*'], allowDelete: false, allowForcePush: false });
    expect(answers[1]).not.toContain(session.gitToken);
  });
});
