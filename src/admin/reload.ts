// POST /v1/reload: the config file, the Trusted allowlist and every state file read again. A
// file that does not parse or validate is refused and the last good policy stays in force; the
// answer is then 400 with every error, each prefixed by its file.

import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.js';
import { sendError } from './errors.js';

export function reloadRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.post('/v1/reload', async (_request, reply) => {
    const result = await runtime.reloadFromFile();
    if (result.ok) return { status: 'reloaded', environments: runtime.store.listEnvironments(true).length, restartNeeded: result.restartNeeded };
    const errors = result.problems.flatMap((p) => p.errors.map((e) => ({ path: `${p.file}: ${e.path}`, message: e.message })));
    return sendError(reply, 400, 'reload refused: the last good policy stays in force', errors);
  });
}
