// The GitHub proxy: on inspected requests to the configured git hosts, the sandbox's scoped
// credential (minted by egress-gate for its session) is checked and replaced by the operator's
// real one, repositories outside the session's scope are refused, and pushes are read before
// anything reaches the upstream: a ref outside the session's branches, a deletion or a
// force-update that the scope does not allow refuses the whole push, in git's own words.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Session } from '../state/sessions.js';
import { readPackCommits } from './pack.js';
import { parseCommands } from './pktline.js';
import { decidePush } from './push-policy.js';
import { reportStatus } from './report-status.js';
import { compileScope, type GitScope } from './scope.js';

export interface GitGatewayConfig {
  /** Smart-HTTP git hosts (github.com): Basic credentials. */
  hosts: string[];
  /** REST API hosts (api.github.com): bearer credentials. */
  apiHosts: string[];
  username: string;
  /** The operator's real credential; never logged, stored or answered. */
  credential: string;
  maxPushBytes: number;
}

export type GitOutcome =
  | { kind: 'refuse'; reason: 'auth_invalid' | 'content_filtered'; detail: string }
  | { kind: 'challenge' }
  | { kind: 'respond'; status: number; headers: Record<string, string>; body: Buffer; detail: string }
  | { kind: 'forward'; authorization: string; body?: Buffer };

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export function hashGitToken(token: string): string {
  return digest(token).toString('hex');
}

/** The credential a git client or API client presents: Basic (password or user), token, Bearer. */
function presentedToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const basic = /^basic +([A-Za-z0-9+/=]+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? decoded : decoded.slice(colon + 1) || decoded.slice(0, colon);
  }
  return /^(?:token|bearer) +(\S+)$/i.exec(header)?.[1];
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export class GitGateway {
  private readonly smartHosts: Set<string>;
  private readonly apiHosts: Set<string>;

  constructor(private readonly config: GitGatewayConfig, private readonly sessionOf: (id: string) => Session | undefined) {
    this.smartHosts = new Set(config.hosts);
    this.apiHosts = new Set(config.apiHosts);
  }

  isGitHost(host: string): boolean {
    return this.smartHosts.has(host) || this.apiHosts.has(host);
  }

  async handle(sessionId: string | undefined, host: string, method: string, path: string, req: IncomingMessage): Promise<GitOutcome> {
    const session = sessionId === undefined ? undefined : this.sessionOf(sessionId);
    const scope = session?.git as GitScope | undefined;
    const tokenHash = session?.gitTokenHash;
    if (!session || !scope || typeof tokenHash !== 'string') return { kind: 'refuse', reason: 'auth_invalid', detail: 'this session has no git scope' };
    const presented = presentedToken(req.headers.authorization);
    if (presented === undefined) return this.smartHosts.has(host) ? { kind: 'challenge' } : { kind: 'refuse', reason: 'auth_invalid', detail: 'no credential' };
    // Anything but this session's own scoped credential (a real token pasted into the sandbox,
    // another session's credential) is refused: the sandbox never holds a usable secret.
    if (!timingSafeEqual(digest(presented), Buffer.from(tokenHash, 'hex'))) return { kind: 'refuse', reason: 'auth_invalid', detail: 'not this session\'s git credential' };
    const compiled = compileScope(scope);
    const smart = this.smartHosts.has(host);
    const authorization = smart ? `Basic ${Buffer.from(`${this.config.username}:${this.config.credential}`).toString('base64')}` : `Bearer ${this.config.credential}`;

    const repo = smart ? /^\/([^/]+)\/([^/?]+?)(?:\.git)?\/(?:info\/refs|git-upload-pack|git-receive-pack|HEAD|objects\/)/.exec(path) : /^\/repos\/([^/]+)\/([^/?]+)/.exec(path);
    if (!repo) {
      if (smart) return { kind: 'refuse', reason: 'content_filtered', detail: 'not a git smart-HTTP path' };
      return { kind: 'forward', authorization };
    }
    const [owner, name] = [decodeURIComponent(repo[1] as string), decodeURIComponent(repo[2] as string)];
    if (!compiled.hasRepository(owner, name)) return { kind: 'refuse', reason: 'content_filtered', detail: `repository ${owner}/${name} is outside this session's scope` };

    if (smart && method === 'POST' && /\/git-receive-pack$/.test(path.split('?')[0] as string)) {
      const body = await readBody(req, this.config.maxPushBytes);
      if (!body) return { kind: 'refuse', reason: 'content_filtered', detail: `push larger than ${this.config.maxPushBytes} bytes` };
      const commands = parseCommands(body);
      if (commands.state !== 'done') return { kind: 'refuse', reason: 'content_filtered', detail: commands.state === 'error' ? commands.why : 'truncated push' };
      const pack = commands.rest.length > 0 ? readPackCommits(commands.rest) : undefined;
      const verdicts = decidePush(compiled, commands.updates, pack?.ok ? pack.parents : undefined);
      if (verdicts.every((v) => v.ok)) return { kind: 'forward', authorization, body };
      return {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/x-git-receive-pack-result', 'cache-control': 'no-cache' },
        body: reportStatus(verdicts, commands.capabilities),
        detail: verdicts.find((v) => !v.ok)?.reason ?? 'push refused',
      };
    }
    if (!smart) {
      const checked = await this.apiRefWrite(compiled, method, path, req);
      if (checked && 'detail' in checked) return { kind: 'refuse', reason: 'content_filtered', detail: checked.detail };
      return { kind: 'forward', authorization, body: checked?.body };
    }
    return { kind: 'forward', authorization };
  }

  /** API calls that move refs follow the push scope: ref writes, merges, pull-request merges. */
  private async apiRefWrite(compiled: ReturnType<typeof compileScope>, method: string, path: string, req: IncomingMessage): Promise<{ detail: string } | { body: Buffer } | null> {
    const clean = path.split('?')[0] as string;
    const refPath = /^\/repos\/[^/]+\/[^/]+\/git\/refs\/(.+)$/.exec(clean);
    const writes = method !== 'GET' && method !== 'HEAD';
    if (!writes) return null;
    if (/^\/repos\/[^/]+\/[^/]+\/pulls\/\d+\/merge$/.test(clean)) return { detail: 'merging pull requests is not allowed to this session' };
    const needsBody = (refPath && method === 'PATCH') || /\/git\/refs$/.test(clean) || /\/merges$/.test(clean);
    const body = needsBody ? await readBody(req, 1024 * 1024) : undefined;
    let json: Record<string, unknown> = {};
    try {
      json = body && body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      return { detail: 'unreadable JSON body' };
    }
    let ref: string | undefined;
    if (refPath) ref = `refs/${decodeURIComponent(refPath[1] as string)}`;
    else if (/\/git\/refs$/.test(clean)) ref = String(json.ref ?? '');
    else if (/\/merges$/.test(clean)) ref = `refs/heads/${String(json.base ?? '')}`;
    if (ref === undefined) return body ? { body } : null;
    if (!compiled.mayPush(ref)) return { detail: `ref write to ${ref} refused: this session may push only to ${compiled.scope.branches.join(', ')}` };
    if (method === 'DELETE' && !compiled.scope.allowDelete) return { detail: `deleting ${ref} is not allowed to this session` };
    if (json.force === true && !compiled.scope.allowForcePush) return { detail: `force-updating ${ref} is not allowed to this session` };
    return body ? { body } : null;
  }
}
