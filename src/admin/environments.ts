// /v1/environments: list, read, create or replace, delete, archive, unarchive.
// A new policy is in force for new connections before its write is durable, and the answer
// waits until it is (the store's change event rebuilds the snapshot synchronously, and the
// rebuild closes what it now refuses). Every change is logged, with those two times.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { editDomainLists } from '../policy/domain-edits.js';
import { KeyedQueue } from '../state/keyed-queue.js';
import { validateEnvironment } from '../policy/environment.js';
import type { EnvironmentPolicy } from '../policy/types.js';
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

/** When each change's request arrived (its headers read): where the times its log record gives start. */
const arrivals = new WeakMap<FastifyRequest, number>();
function markArrival(request: FastifyRequest, _reply: unknown, done: () => void): void {
  arrivals.set(request, performance.now());
  done();
}
const sinceArrival = (request: FastifyRequest, at = performance.now()): number => Math.round((at - (arrivals.get(request) ?? at)) * 10) / 10;

export function environmentRoutes(app: FastifyInstance, runtime: Runtime): void {
  const store = runtime.store;

  /**
   * Stores a new version and logs it: what changed (counts: the lists themselves are a GET
   * away), and how long after the request arrived it was in force and durable.
   */
  async function write(request: FastifyRequest, change: string, policy: EnvironmentPolicy, detail: Record<string, unknown>): Promise<void> {
    let inForceMs: number | undefined;
    try {
      await store.putEnvironment(policy, () => {
        inForceMs = sinceArrival(request);
      });
    } catch (error) {
      runtime.log.error({ environment: policy.id, change, err: (error as Error).message }, 'policy change not written; the version before it is in force');
      throw error;
    }
    runtime.log.info({ environment: policy.id, change, ...detail, inForceMs, durableMs: sinceArrival(request) }, 'policy changed');
  }

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
    { schema: { params: idParams, body: { type: 'object' } }, onRequest: markArrival },
    async (request, reply) => {
      const { id } = request.params;
      const previous = store.getEnvironment(id);
      const result = validateEnvironment(request.body, id, previous);
      if (!result.ok) return sendError(reply, 400, 'invalid environment', result.errors);
      const existed = previous !== undefined;
      const { allowedDomains, deniedDomains } = result.value;
      await write(request, existed ? 'replace' : 'create', result.value, { allowedDomains: allowedDomains.length, deniedDomains: deniedDomains.length });
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
  app.patch<{ Params: { id: string }; Body: unknown }>('/v1/environments/:id', { schema: { params: idParams, body: { type: 'object' } }, onRequest: markArrival }, (request, reply) =>
    edits.run(request.params.id, async () => {
      const { id } = request.params;
      const policy = store.getEnvironment(id);
      if (!policy) return sendError(reply, 404, `unknown environment "${id}"`);
      const result = editDomainLists(policy, request.body);
      if (!result.ok) return sendError(reply, 400, 'invalid edit', result.errors);
      const changed = Object.values(result.changes).some((c) => c.added.length > 0 || c.removed.length > 0);
      const counts = Object.fromEntries(Object.entries(result.changes).map(([list, c]) => [list, { added: c.added.length, removed: c.removed.length }]));
      if (changed) await write(request, 'edit', result.value, counts);
      return { id, ...result.changes };
    }),
  );

  app.delete<{ Params: { id: string } }>('/v1/environments/:id', { schema: { params: idParams }, onRequest: markArrival }, async (request, reply) => {
    const { id } = request.params;
    if (!store.getEnvironment(id)) return sendError(reply, 404, `unknown environment "${id}"`);
    // Its sessions go with it: an environment created later under the same id must not
    // inherit credentials that were issued for the old one.
    for (const session of store.listSessions()) if (session.environment === id) await store.deleteSession(session.id);
    await store.deleteEnvironment(id);
    runtime.log.info({ environment: id, change: 'delete', durableMs: sinceArrival(request) }, 'policy changed');
    return reply.code(204).send();
  });

  for (const [action, archived] of [['archive', true], ['unarchive', false]] as const) {
    app.post<{ Params: { id: string } }>(`/v1/environments/:id/${action}`, { schema: { params: idParams }, onRequest: markArrival }, async (request, reply) => {
      const policy = store.getEnvironment(request.params.id);
      if (!policy) return sendError(reply, 404, `unknown environment "${request.params.id}"`);
      const next = { ...policy, archived };
      await write(request, action, next, {});
      return next;
    });
  }
}
