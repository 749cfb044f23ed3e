// GET /v1/defaults: the Trusted list as written in the allowlist file, and defaults.alwaysAllow.

import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.js';

export function defaultsRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/v1/defaults', async () => ({
    allowlist: runtime.config.defaults.allowlist,
    domains: runtime.trustedEntries(),
    alwaysAllow: runtime.config.defaults.alwaysAllow,
  }));
}
