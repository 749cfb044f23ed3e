// The admin listener (Fastify, JSON). Every route but /healthz and /metrics needs the bearer
// token. Routes live one file per resource beside this one.

import Fastify from 'fastify';
import type { Runtime } from '../runtime.js';
import { bearerMatches, resolveAdminToken } from './auth.js';
import { environmentRoutes } from './environments.js';
import { errorHandler, sendError } from './errors.js';
import { caRoutes } from './ca.js';
import { checkRoutes } from './check.js';
import { defaultsRoutes } from './defaults.js';
import { reloadRoutes } from './reload.js';
import { sessionRoutes } from './sessions.js';

const open = new Set(['/healthz', '/metrics']);

export async function startAdmin(runtime: Runtime): Promise<{ address: string; close: () => Promise<void> }> {
  const { token, generatedAt } = await resolveAdminToken(runtime.config.admin.token, runtime.config.stateDir);
  if (generatedAt) runtime.log.info({ tokenFile: generatedAt }, 'admin token generated (mode 0600); read it from this file');

  const app = Fastify({
    logger: false,
    bodyLimit: 8 * 1024 * 1024,
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false } },
  });
  app.setErrorHandler(errorHandler);
  // POST /v1/reload and /archive take no body, but scripts send `content-type: application/json`
  // on every call: an empty JSON body is no body, not an error. Anything else goes through
  // Fastify's own parser (which refuses __proto__ and constructor.prototype keys).
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else json(request, body as string, done);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`));
  app.addHook('onRequest', async (request, reply) => {
    if (open.has(request.url.split('?')[0] ?? '')) return;
    if (!bearerMatches(request.headers.authorization, token)) {
      reply.header('WWW-Authenticate', 'Bearer realm="egress-gate admin"');
      return sendError(reply, 401, 'missing or wrong bearer token');
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    reply.header('Content-Type', runtime.metrics.registry.contentType);
    return runtime.metrics.registry.metrics();
  });
  environmentRoutes(app, runtime);
  sessionRoutes(app, runtime, () => runtime.proxyAddress());
  checkRoutes(app, runtime);
  reloadRoutes(app, runtime);
  defaultsRoutes(app, runtime);
  caRoutes(app, runtime);

  const { host, port } = runtime.config.admin.listen;
  const address = await app.listen({ host, port });
  return { address, close: () => app.close() };
}
