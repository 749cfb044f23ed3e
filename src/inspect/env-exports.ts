// `egress-gate env --proxy-url URL` (SPEC §7): the shell lines a sandbox sources. Pure: the
// caller says where the CA files are and whether they exist.

import type { CaFiles } from './ca.js';

const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

export type ProxyUrlCheck = { ok: true; url: string } | { ok: false; error: string };

export function checkProxyUrl(raw: string): ProxyUrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, error: `${JSON.stringify(raw)} is not a URL (expected http://[session:token@]host:port)` };
  }
  // The proxy listener speaks plain HTTP; an https:// proxy URL would make clients fail to connect.
  if (url.protocol !== 'http:') return { ok: false, error: `${JSON.stringify(url.protocol)}: the proxy URL must start with http://` };
  if (url.pathname !== '/' || url.search || url.hash) return { ok: false, error: 'the proxy URL must not carry a path, query or fragment' };
  return { ok: true, url: raw.replace(/\/$/, '') };
}

/**
 * Both spellings of the proxy variables: curl reads only lower-case `http_proxy` (an upper-case
 * one can be set by a CGI request header, "httpoxy"), most other tools read either.
 *
 * With a CA: Node's NODE_EXTRA_CA_CERTS adds to its store, so it gets the CA alone. OpenSSL
 * (SSL_CERT_FILE, curl), Python requests, pip, git and npm *replace* their store with the file
 * they are given, so they get bundle.pem: the public roots plus the CA, and hosts that are not
 * inspected (or excluded from inspection) keep verifying as before.
 */
export function envExports(proxyUrl: string, ca: CaFiles | undefined): string {
  const lines = [
    `export HTTPS_PROXY=${quote(proxyUrl)}`,
    `export https_proxy=${quote(proxyUrl)}`,
    `export HTTP_PROXY=${quote(proxyUrl)}`,
    `export http_proxy=${quote(proxyUrl)}`,
    `export NO_PROXY='localhost,127.0.0.1,::1'`,
    `export no_proxy='localhost,127.0.0.1,::1'`,
  ];
  if (ca) {
    lines.push(
      `# TLS inspection: trust the egress-gate CA (copy ${ca.dir} to the same path in the sandbox, or fetch GET /v1/ca.pem)`,
      `export NODE_EXTRA_CA_CERTS=${quote(ca.cert)}`,
      `export SSL_CERT_FILE=${quote(ca.bundle)}`,
      `export CURL_CA_BUNDLE=${quote(ca.bundle)}`,
      `export REQUESTS_CA_BUNDLE=${quote(ca.bundle)}`,
      `export PIP_CERT=${quote(ca.bundle)}`,
      `export GIT_SSL_CAINFO=${quote(ca.bundle)}`,
      `export npm_config_cafile=${quote(ca.bundle)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
