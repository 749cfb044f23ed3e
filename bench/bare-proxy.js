// The reference: a minimal pass-through forward proxy on Node's http and net, with no policy,
// logging or metrics. What Node itself allows; egress-gate is measured as a ratio to it.
//   node bench/bare-proxy.js PORT
import { Agent, createServer, request } from 'node:http';
import { connect } from 'node:net';

const agent = new Agent({ keepAlive: true, maxFreeSockets: 256 });
const server = createServer((req, res) => {
  const url = new URL(req.url);
  const upstream = request({ host: url.hostname, port: url.port || 80, path: url.pathname + url.search, method: req.method, headers: req.headers, agent }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.on('connect', (req, client, head) => {
  const [host, port] = req.url.split(':');
  const upstream = connect(Number(port), host, () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
