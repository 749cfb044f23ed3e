// One shape for every admin API error: { error, errors?: [{ path, message }] }.

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { StoreUnavailableError } from '../state/store.js';

export interface PathError {
  path: string;
  message: string;
}

export function sendError(reply: FastifyReply, status: number, error: string, errors?: PathError[]): FastifyReply {
  return reply.code(status).send(errors ? { error, errors } : { error });
}

/** Fastify's schema errors (collected with allErrors) and store failures, in that shape. */
export function errorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation) {
    const errors = error.validation.map((v) => {
      const missing = (v.params as { missingProperty?: string; additionalProperty?: string }) ?? {};
      const base = `${error.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`;
      const path = missing.missingProperty ? `${base}.${missing.missingProperty}` : missing.additionalProperty ? `${base}.${missing.additionalProperty}` : base;
      return { path, message: v.message ?? 'invalid' };
    });
    return sendError(reply, 400, 'invalid request', errors);
  }
  if (error instanceof StoreUnavailableError) return sendError(reply, 503, `state store unavailable: ${error.message}; nothing was changed`);
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) return sendError(reply, error.statusCode, error.message);
  return sendError(reply, 500, 'internal error');
}
