// The admin listener (Fastify). Routes live one file per resource beside this one.

import Fastify from 'fastify';
import type { Runtime } from '../runtime.js';

export async function startAdmin(runtime: Runtime): Promise<{ address: string; close: () => Promise<void> }> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    reply.header('Content-Type', runtime.metrics.registry.contentType);
    return runtime.metrics.registry.metrics();
  });
  const { host, port } = runtime.config.admin.listen;
  const address = await app.listen({ host, port });
  return { address, close: () => app.close() };
}
