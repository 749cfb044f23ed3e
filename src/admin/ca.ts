// GET /v1/ca.pem: the inspection CA certificate sandboxes must trust. Read from
// <inspection.caDir>/ca.pem on every call, so a CA made by `egress-gate ca init` after start is
// served without a restart. Only the certificate: the key never leaves caDir.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.js';
import { sendError } from './errors.js';

export function caRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/v1/ca.pem', async (_request, reply) => {
    try {
      const pem = await readFile(join(runtime.config.inspection.caDir, 'ca.pem'), 'utf8');
      return reply.type('application/x-pem-file').send(pem);
    } catch {
      return sendError(reply, 404, 'inspection CA not initialised: run `egress-gate ca init`');
    }
  });
}
