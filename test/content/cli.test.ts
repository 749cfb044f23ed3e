// `egress-gate ca init` and `egress-gate env` as an operator runs them (dist/cli.js), and the
// config key content.secretPatterns through `validate`.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { egressGate } from '../cli/cli.js';
import { repoRoot, tempDir } from '../helpers/gate.js';

function configIn(dir: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'egress.yaml');
  mkdirSync(join(dir, 'state'), { recursive: true });
  writeFileSync(file, stringify({ stateDir: join(dir, 'state'), defaults: { allowlist: join(repoRoot, 'allowlists/default.yaml') }, inspection: { caDir: join(dir, 'certs') }, ...extra }));
  return file;
}

describe('egress-gate ca init', () => {
  it('creates a CA with its key at mode 0600, and keeps it on a second run', async () => {
    const dir = tempDir();
    const config = configIn(dir);
    const first = await egressGate(['ca', 'init', '--config', config]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/created/);
    const cert = join(dir, 'certs', 'ca.pem');
    const key = join(dir, 'certs', 'ca.key');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const pem = readFileSync(cert, 'utf8');
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign/);
    // The bundle is the public roots plus the CA: tools whose CA setting replaces their store.
    const bundle = readFileSync(join(dir, 'certs', 'bundle.pem'), 'utf8');
    expect(bundle.endsWith(pem)).toBe(true);
    expect(bundle.split('BEGIN CERTIFICATE').length).toBeGreaterThan(50);

    const second = await egressGate(['ca', 'init', '--config', config]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/kept the existing CA/);
    expect(readFileSync(cert, 'utf8')).toBe(pem);
  });

  it('refuses to guess when only half a CA is there, and loses nothing', async () => {
    const dir = tempDir();
    const config = configIn(dir);
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs', 'ca.pem'), 'a certificate someone trusts');
    const r = await egressGate(['ca', 'init', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ca\.pem without ca\.key/);
    expect(readFileSync(join(dir, 'certs', 'ca.pem'), 'utf8')).toBe('a certificate someone trusts');
  });
});

describe('egress-gate env', () => {
  it('prints the proxy variables, and the CA variables once a CA exists', async () => {
    const dir = tempDir();
    const config = configIn(dir);
    const url = 'http://ses_1:tok@127.0.0.1:3128';
    const before = await egressGate(['env', '--config', config, '--proxy-url', url]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain(`export HTTPS_PROXY='${url}'`);
    expect(before.stdout).toContain(`export http_proxy='${url}'`);
    expect(before.stdout).toContain("export NO_PROXY='localhost,127.0.0.1,::1'");
    expect(before.stdout).not.toContain('NODE_EXTRA_CA_CERTS');

    await egressGate(['ca', 'init', '--config', config]);
    const after = await egressGate(['env', '--config', config, '--proxy-url', url]);
    const certs = join(dir, 'certs');
    expect(after.stdout).toContain(`export NODE_EXTRA_CA_CERTS='${join(certs, 'ca.pem')}'`);
    for (const name of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'PIP_CERT', 'GIT_SSL_CAINFO', 'npm_config_cafile']) {
      expect(after.stdout).toContain(`export ${name}='${join(certs, 'bundle.pem')}'`);
    }
    // What it prints is valid shell: sourcing it sets the variables.
    const shell = execFileSync('sh', ['-c', `${after.stdout}\nprintf '%s|%s' "$HTTPS_PROXY" "$GIT_SSL_CAINFO"`]).toString();
    expect(shell).toBe(`${url}|${join(certs, 'bundle.pem')}`);
  });

  it.each([['https://127.0.0.1:3128'], ['not a url'], ['http://127.0.0.1:3128/path']])('refuses the proxy URL %j (exit 2)', async (url) => {
    const r = await egressGate(['env', '--config', configIn(tempDir()), '--proxy-url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/egress-gate env: /);
  });

  it('needs --proxy-url', async () => {
    expect((await egressGate(['env'])).code).toBe(2);
  });
});

describe('content.secretPatterns in the config', () => {
  it('validate accepts a good pattern and names the path of a bad one', async () => {
    const dir = tempDir();
    const good = configIn(dir, { content: { secretPatterns: [{ name: 'acme_key', regex: 'acme_[0-9a-f]{32}', allowedHosts: ['api.acme.example'] }] } });
    expect((await egressGate(['validate', '--config', good])).code).toBe(0);
    const bad = configIn(tempDir(), { content: { secretPatterns: [{ name: 'acme_key', regex: '(unclosed' }] } });
    const r = await egressGate(['validate', '--config', bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/content\.secretPatterns\[0\]\.regex/);
    expect(existsSync(join(dir, 'certs'))).toBe(false);
  });
});
