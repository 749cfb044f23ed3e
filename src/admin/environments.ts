// /v1/environments: list, read, create or replace, delete, archive, unarchive.
// A PUT answers once the new policy is in force for new connections (the store's change
// event rebuilds the snapshot synchronously, and the rebuild closes what it now refuses).

import type { FastifyInstance } from 'fastify';
import { validateEnvironment } from '../policy/environment.js';
import type { Runtime } from '../runtime.js';
import { sendError } from './errors.js';

/** SPEC §3: 1–64 of [a-z0-9_-]. The id is also a file name, so nothing else ever reaches the disk. */
export const idPattern = '^[a-z0-9_-]{1,64}$';

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: idPattern } },
} as const;

export function environmentRoutes(app: FastifyInstance, runtime: Runtime): void {
  const store = runtime.store;

  app.get<{ Querystring: { archived?: boolean } }>(
    '/v1/environments',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { archived: { type: 'boolean' } } } } },
    async (request) => ({ environments: store.listEnvironments(request.query.archived === true) }),
  );

  app.get<{ Params: { id: string } }>('/v1/environments/:id', { schema: { params: idParams } }, async (request, reply) => {
    const policy = store.getEnvironment(request.params.id);
    return policy ?? sendError(reply, 404, `unknown environment "${request.params.id}"`);
  });

  app.put<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/v1/environments/:id',
    { schema: { params: idParams, body: { type: 'object' } } },
    async (request, reply) => {
      const { id } = request.params;
      const result = validateEnvironment(request.body, id);
      if (!result.ok) return sendError(reply, 400, 'invalid environment', result.errors);
      const existed = store.getEnvironment(id) !== undefined;
      await store.putEnvironment(result.value);
      return reply.code(existed ? 200 : 201).send(result.value);
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/environments/:id', { schema: { params: idParams } }, async (request, reply) => {
    const { id } = request.params;
    if (!store.getEnvironment(id)) return sendError(reply, 404, `unknown environment "${id}"`);
    // Its sessions go with it: an environment created later under the same id must not
    // inherit credentials that were issued for the old one.
    for (const session of store.listSessions()) if (session.environment === id) await store.deleteSession(session.id);
    await store.deleteEnvironment(id);
    return reply.code(204).send();
  });

  for (const [action, archived] of [['archive', true], ['unarchive', false]] as const) {
    app.post<{ Params: { id: string } }>(`/v1/environments/:id/${action}`, { schema: { params: idParams } }, async (request, reply) => {
      const policy = store.getEnvironment(request.params.id);
      if (!policy) return sendError(reply, 404, `unknown environment "${request.params.id}"`);
      const next = { ...policy, archived };
      await store.putEnvironment(next);
      return next;
    });
  }
}
