// /v1/sessions: issue, inspect and revoke proxy credentials. The token is returned once, at
// creation; only its hash is kept. Revocation takes effect at once, open tunnels included.

import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.js';
import { hashToken, newSessionCredentials, type Session } from '../state/sessions.js';
import { randomBytes } from 'node:crypto';
import { hashGitToken } from '../github/gateway.js';
import { validateGitScope, type GitScope } from '../github/scope.js';
import { sendError } from './errors.js';
import { idParams, idPattern } from './environments.js';


/** What an API answer may say about a session: never the token, never its hash. */
export function describeSession(session: Session): Record<string, unknown> {
  const { tokenHash: _hash, ...visible } = session;
  for (const key of Object.keys(visible)) if (/secret|token|hash|credential/i.test(key)) delete visible[key];
  return visible;
}

export function sessionRoutes(app: FastifyInstance, runtime: Runtime, proxyAddress: () => string): void {
  const store = runtime.store;

  app.post<{ Body: { environment: string; git?: unknown } }>(
    '/v1/sessions',
    {
      schema: {
        body: {
          type: 'object',
          required: ['environment'],
          additionalProperties: false,
          properties: { environment: { type: 'string', pattern: idPattern }, git: { type: 'object' } },
        },
      },
    },
    async (request, reply) => {
      const policy = store.getEnvironment(request.body.environment);
      if (!policy) return sendError(reply, 404, `unknown environment "${request.body.environment}"`);
      if (policy.archived) return sendError(reply, 409, `environment "${policy.id}" is archived: existing sessions keep working, new ones are refused`);
      let git: { scope: GitScope; token: string } | undefined;
      if (request.body.git !== undefined) {
        const scope = validateGitScope(request.body.git);
        if (!scope.ok) return sendError(reply, 400, 'invalid git scope', scope.errors);
        // The sandbox's git credential: useless anywhere but through this proxy, for this session.
        git = { scope: scope.value, token: `egs_${randomBytes(32).toString('base64url')}` };
      }
      const { id, token } = newSessionCredentials();
      const session: Session = { id, environment: policy.id, tokenHash: hashToken(token), createdAt: new Date().toISOString() };
      if (git) Object.assign(session, { git: git.scope, gitTokenHash: hashGitToken(git.token) });
      await store.putSession(session);
      return reply.code(201).send({ id, token, environment: policy.id, proxyUrl: `http://${id}:${token}@${proxyAddress()}`, ...(git ? { git: git.scope, gitToken: git.token } : {}) });
    },
  );

  app.get<{ Params: { id: string } }>('/v1/sessions/:id', { schema: { params: idParams } }, async (request, reply) => {
    const session = store.getSession(request.params.id);
    return session ? describeSession(session) : sendError(reply, 404, `unknown session "${request.params.id}"`);
  });

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', { schema: { params: idParams } }, async (request, reply) => {
    if (!store.getSession(request.params.id)) return sendError(reply, 404, `unknown session "${request.params.id}"`);
    await store.deleteSession(request.params.id);
    return reply.code(204).send();
  });
}
