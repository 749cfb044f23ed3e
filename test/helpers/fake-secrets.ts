// One fake credential per built-in format, with a host that is that credential's own service.
// Built from parts so that no file holds a string a secret scanner would take for a real key.

const base62 = (n: number, seed = 7): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[(i * seed + 11) % alphabet.length];
  return out;
};
const upper = (n: number): string => base62(n, 5).toUpperCase().replace(/[^A-Z0-9]/g, 'Q');

export interface FakeSecret {
  kind: string;
  value: string;
  /** A host of the credential's own service, where sending it is allowed. */
  ownHost: string;
}

export const fakeSecrets: FakeSecret[] = [
  { kind: 'aws_access_key_id', value: `AKIA${upper(16)}`, ownHost: 's3.amazonaws.com' },
  { kind: 'aws_access_key_id', value: `ASIA${upper(16)}`, ownHost: 'sts.amazonaws.com' },
  { kind: 'github_token', value: `ghp_${base62(36)}`, ownHost: 'api.github.com' },
  { kind: 'github_token', value: `gho_${base62(36, 3)}`, ownHost: 'github.com' },
  { kind: 'github_token', value: `github_pat_${base62(22)}_${base62(59, 3)}`, ownHost: 'api.github.com' },
  { kind: 'gitlab_token', value: `glpat-${base62(20)}`, ownHost: 'gitlab.com' },
  { kind: 'slack_token', value: `xoxb-123456789012-${base62(24)}`, ownHost: 'slack.com' },
  { kind: 'anthropic_api_key', value: `sk-ant-api03-${base62(80)}`, ownHost: 'api.anthropic.com' },
  { kind: 'openai_api_key', value: `sk-proj-${base62(64)}`, ownHost: 'api.openai.com' },
  { kind: 'openai_api_key', value: `sk-${base62(20)}T3BlbkFJ${base62(20, 3)}`, ownHost: 'api.openai.com' },
];

/** A private-key block header: refused to every host. */
export const fakePrivateKey = `${'-----BEGIN'} RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n`;
