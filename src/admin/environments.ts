// /v1/environments: list, read, create or replace, delete, archive, unarchive.
// A PUT answers once the new policy is in force for new connections (the store's change
// event rebuilds the snapshot synchronously, and the rebuild closes what it now refuses).

import type { FastifyInstance } from 'fastify';
import { editDomainLists } from '../policy/domain-edits.js';
import { KeyedQueue } from '../state/keyed-queue.js';
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

/** `Prefer: return=minimal`, among any other preferences (RFC 7240 §2, §4.2). */
function prefersMinimal(prefer: string | string[] | undefined): boolean {
  const values = Array.isArray(prefer) ? prefer : prefer === undefined ? [] : [prefer];
  return values.some((value) => value.split(',').some((token) => token.split(';')[0]?.trim().toLowerCase().replace(/\s*=\s*/, '=') === 'return=minimal'));
}

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
      const previous = store.getEnvironment(id);
      const result = validateEnvironment(request.body, id, previous);
      if (!result.ok) return sendError(reply, 400, 'invalid environment', result.errors);
      const existed = previous !== undefined;
      await store.putEnvironment(result.value);
      reply.code(existed ? 200 : 201);
      // RFC 7240: a client that sends a long list need not have it sent back (3 MB at 100 000
      // entries, a third of the time such a PUT takes under load); GET reads it.
      if (prefersMinimal(request.headers.prefer)) return reply.header('preference-applied', 'return=minimal').send({ id });
      return reply.send(result.value);
    },
  );

  // Entries added to and removed from the domain lists, without sending them whole
  // (policy/domain-edits.ts). Answers what changed, not the policy: that is the list it spares.
  // Edits of one environment through this process run one after another, each on the version
  // the one before it wrote, so two concurrent edits both land.
  const edits = new KeyedQueue();
  app.patch<{ Params: { id: string }; Body: unknown }>('/v1/environments/:id', { schema: { params: idParams, body: { type: 'object' } } }, (request, reply) =>
    edits.run(request.params.id, async () => {
      const { id } = request.params;
      const policy = store.getEnvironment(id);
      if (!policy) return sendError(reply, 404, `unknown environment "${id}"`);
      const result = editDomainLists(policy, request.body);
      if (!result.ok) return sendError(reply, 400, 'invalid edit', result.errors);
      const changed = Object.values(result.changes).some((c) => c.added.length > 0 || c.removed.length > 0);
      if (changed) await store.putEnvironment(result.value);
      return { id, ...result.changes };
    }),
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
