// /v1/check (the proxy's own decision, without sending anything), /v1/reload, /v1/defaults
// and /v1/ca.pem.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parseCheckTarget } from '../proxy/check-target.js';
import type { Runtime } from '../runtime.js';
import { sendError } from './errors.js';

export function policyToolRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get<{ Querystring: { environment: string; url: string } }>(
    '/v1/check',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['environment', 'url'],
          additionalProperties: false,
          properties: { environment: { type: 'string', minLength: 1 }, url: { type: 'string', minLength: 1, maxLength: 2048 } },
        },
      },
    },
    async (request, reply) => {
      const target = parseCheckTarget(request.query.url);
      if (typeof target === 'string') return sendError(reply, 400, `url: ${target}`, [{ path: 'querystring.url', message: target }]);
      const decision = runtime.check(request.query.environment, target);
      if (!decision) return sendError(reply, 404, `unknown environment "${request.query.environment}"`);
      return { decision: decision.allow ? 'allow' : 'deny', reason: decision.reason, rule: decision.rule ?? null, environment: decision.environment, host: target.host, port: target.port };
    },
  );

  app.post('/v1/reload', async (_request, reply) => {
    const result = await runtime.reload();
    if (result.ok) return { status: 'reloaded' };
    const errors = result.problems.flatMap((p) => p.errors.map((e) => ({ path: `${p.file}: ${e.path}`, message: e.message })));
    return sendError(reply, 400, 'reload refused: the last good policy stays in force', errors);
  });

  app.get('/v1/defaults', async () => ({
    allowlist: runtime.config.defaults.allowlist,
    domains: runtime.trustedEntries(),
    alwaysAllow: runtime.config.defaults.alwaysAllow,
  }));

  app.get('/v1/ca.pem', async (_request, reply) => {
    try {
      const pem = await readFile(join(runtime.config.inspection.caDir, 'ca.pem'), 'utf8');
      return reply.type('application/x-pem-file').send(pem);
    } catch {
      return sendError(reply, 404, 'inspection CA not initialised: run `egress-gate ca init`');
    }
  });
}
