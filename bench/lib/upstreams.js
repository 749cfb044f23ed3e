// The upstreams every proxy is measured against, in a child process of their own so the
// bench client, the proxy and the servers do not share an event loop:
//   http:  1 KiB answers            https: 1 KiB answers over TLS (self-signed, made at start)
//   bulk:  raw TCP that streams bytes as fast as it can
//   hold:  raw TCP that accepts and holds idle connections
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createServer as createTcp } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';

function selfSigned() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: 'bench.test' }]);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 2, value: 'bench.test' }] }]);
  cert.sign(key, forge.md.sha256.create());
  return { key: keyPem, cert: forge.pki.certificateToPem(cert) };
}

const body = Buffer.alloc(1024, 'x');
const answer = (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1024' });
  res.end(body);
};
const chunk = Buffer.alloc(64 * 1024, 'y');
const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));

const ports = {
  http: await listen(createHttp({ keepAliveTimeout: 60_000 }, answer)),
  https: await listen(createHttps({ ...selfSigned(), keepAliveTimeout: 60_000 }, answer)),
  bulk: await listen(
    createTcp((socket) => {
      socket.on('error', () => {});
      const pump = () => {
        while (!socket.destroyed && socket.write(chunk));
        if (!socket.destroyed) socket.once('drain', pump);
      };
      pump();
    }),
  ),
  hold: await listen(createTcp((socket) => socket.on('error', () => {}))),
};
process.stdout.write(`${JSON.stringify(ports)}\n`);
