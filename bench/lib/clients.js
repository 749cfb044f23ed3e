// Small Node clients for the workloads autocannon does not cover: tunnel setup with a TLS
// handshake, bulk tunnel throughput, idle tunnels.
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** CONNECT through `proxyPort` (or straight to the target when null); resolves the socket. */
export function openTunnel(proxyPort, host, port) {
  return new Promise((resolve, reject) => {
    if (proxyPort === null) {
      const direct = connect(port, '127.0.0.1', () => resolve(direct));
      direct.once('error', reject);
      return;
    }
    const socket = connect(proxyPort, '127.0.0.1');
    socket.setNoDelay(true);
    socket.once('error', reject);
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      // tinyproxy answers in HTTP/1.0.
      if (!/^HTTP\/1\.[01] 200 /.test(head)) return reject(new Error(head.split('\r\n')[0]));
      const rest = head.slice(end + 4);
      if (rest) socket.unshift(Buffer.from(rest, 'latin1'));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  });
}

/** One full setup: tunnel, TLS handshake, one 1 KiB request; resolves its duration in ms. */
async function setupOnce(proxyPort, host, port) {
  const started = performance.now();
  const raw = await openTunnel(proxyPort, host, port);
  await new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket: raw, servername: 'bench.test', rejectUnauthorized: false }, () => {
      tls.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    let got = 0;
    tls.on('data', (c) => {
      got += c.length;
      if (got >= 1024) {
        tls.destroy();
        resolve();
      }
    });
    tls.on('error', reject);
    tls.on('close', resolve);
  });
  return performance.now() - started;
}

export async function tunnelSetup({ proxyPort, host, port, concurrency, seconds }) {
  const deadline = performance.now() + seconds * 1000;
  const latencies = [];
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        try {
          latencies.push(await setupOnce(proxyPort, host, port));
        } catch {
          errors += 1;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / seconds, p50: latencies[Math.floor(latencies.length * 0.5)] ?? 0, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, errors };
}

export async function bulk({ proxyPort, host, port, tunnels, seconds }) {
  const sockets = await Promise.all(Array.from({ length: tunnels }, () => openTunnel(proxyPort, host, port)));
  let bytes = 0;
  for (const socket of sockets) socket.on('data', (c) => (bytes += c.length));
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const start = bytes;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const moved = bytes - start;
  for (const socket of sockets) socket.destroy();
  return { mbPerSecond: moved / seconds / 1e6 };
}

export async function holdIdle({ proxyPort, host, port, count }) {
  const sockets = [];
  for (let i = 0; i < count; i += 250) {
    const batch = await Promise.all(Array.from({ length: Math.min(250, count - i) }, () => openTunnel(proxyPort, host, port).catch(() => null)));
    for (const s of batch) if (s) sockets.push(s);
  }
  return { sockets, close: () => sockets.forEach((s) => s.destroy()) };
}
