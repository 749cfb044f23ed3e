// GET /v1/check: the decision the proxy would make for a URL or HOST[:PORT], without sending
// anything. Same target parser as `egress-gate check` and the same Runtime.check as the wire,
// so the harness, the CLI and the proxy cannot disagree.

import type { FastifyInstance } from 'fastify';
import { parseCheckTarget } from '../proxy/check-target.js';
import type { Runtime } from '../runtime.js';
import { idPattern } from './environments.js';
import { sendError } from './errors.js';

export function checkRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get<{ Querystring: { environment: string; url: string } }>(
    '/v1/check',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['environment', 'url'],
          additionalProperties: false,
          properties: { environment: { type: 'string', pattern: idPattern }, url: { type: 'string', minLength: 1, maxLength: 2048 } },
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
}
