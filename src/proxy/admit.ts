// The walk every request and tunnel takes before a byte goes upstream:
// identity → policy → limits → resolve and check the address. Shared by forward and tunnel so
// the two cannot drift apart.

import type { CompiledEnvironment } from '../policy/decide.js';
import type { Decision, ReasonCode, Target } from '../policy/types.js';
import type { DecisionRecord, ProxyContext } from './context.js';
import { resolveTarget } from './dial.js';
import { parseProxyAuthorization } from './identity.js';
import type { Refusal } from './refuse.js';

export interface Admitted {
  ok: true;
  environment: CompiledEnvironment;
  sessionId: string | undefined;
  sessionKey: string;
  decision: Decision;
  addresses: string[];
}

export interface Denied {
  ok: false;
  refusal: Refusal;
  record: DecisionRecord;
}

export async function admit(
  ctx: ProxyContext,
  request: { method: string; target: Target; proxyAuthorization: string | string[] | undefined; remoteAddress: string | undefined },
): Promise<Admitted | Denied> {
  const started = performance.now();
  const { method, target } = request;
  const base = { method, host: target.host, port: target.port };
  const deny = (reason: Exclude<ReasonCode, 'allowed'>, environment: string, session: string | undefined, extra: Partial<DecisionRecord> = {}, retryAfter?: number): Denied => ({
    ok: false,
    refusal: { reason, host: target.host, environment, retryAfter },
    record: { ...base, environment, session, decision: 'deny', reason, decisionSeconds: (performance.now() - started) / 1000, ...extra },
  });

  const identity = ctx.identify(parseProxyAuthorization(request.proxyAuthorization));
  if (!identity.ok) return deny(identity.reason, identity.environment, undefined);
  const environment = identity.environment;
  const envId = environment.policy.id;
  const sessionKey = identity.sessionId ?? `anonymous:${request.remoteAddress ?? 'unknown'}`;

  const decision = ctx.decide(environment, target);
  if (!decision.allow) return deny(decision.reason as Exclude<ReasonCode, 'allowed'>, envId, identity.sessionId, { rule: decision.rule });

  const limit = await ctx.limiter.take({ sessionKey, environment: envId, host: target.host }, environment);
  if (!limit.ok) {
    return deny('rate_limited', envId, identity.sessionId, { rule: `limit:${limit.scope}`, limiter: limit.state }, limit.retryAfterSeconds);
  }

  const resolution = await resolveWithTiming(ctx, target.host);
  if (!resolution.ok) return deny(resolution.reason, envId, identity.sessionId, { detail: resolution.detail, rule: resolution.reason === 'private_address' ? resolution.detail : undefined });

  return { ok: true, environment, sessionId: identity.sessionId, sessionKey, decision, addresses: resolution.addresses };
}

async function resolveWithTiming(ctx: ProxyContext, host: string) {
  const resolution = await resolveTarget(host, ctx.dial);
  if (resolution.ok) ctx.observer.upstreamTiming('dns', resolution.dnsMs / 1000);
  return resolution;
}
