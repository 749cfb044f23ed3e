// The product's vocabulary. Everything here is plain data: no sockets, no files.

export type AccessLevel = 'none' | 'trusted' | 'full' | 'custom';

/** Every reason a decision can carry: SPEC §4 refusal codes plus `allowed`. */
export type ReasonCode =
  | 'allowed'
  | 'host_not_allowed'
  | 'host_denied'
  | 'private_address'
  | 'port_not_allowed'
  | 'content_filtered'
  | 'secret_detected'
  | 'auth_required'
  | 'auth_invalid'
  | 'misdirected'
  | 'rate_limited'
  | 'bad_request'
  | 'upstream_unreachable'
  | 'dns_failure'
  | 'upstream_tls_error'
  | 'upstream_timeout';

export interface RateLimitPolicy {
  requestsPerSecond?: number;
  burst?: number;
  maxConnections?: number;
  /** Tunnel bytes per second per session and direction; 0 lifts the config's limit. */
  bandwidthBytesPerSecond?: number;
}

export interface ContentRule {
  hosts: string[];
  methods?: string[];
  paths?: string[];
  action: 'allow' | 'deny';
}

export interface ContentPolicy {
  inspect?: 'off' | 'rules' | 'all';
  /** Hosts tunnelled untouched even when inspection would apply (pinned or mutual-TLS clients). */
  inspectExclude?: string[];
  methods?: string[];
  rules?: ContentRule[];
  maxRequestBodyBytes?: number;
  secrets?: 'block' | 'log' | 'off';
}

/** The environment policy object of SPEC §3, as stored and as the admin API speaks it. */
export interface EnvironmentPolicy {
  id: string;
  name: string;
  access: AccessLevel;
  allowedDomains: string[];
  includeDefaults: boolean;
  deniedDomains: string[];
  archived: boolean;
  allowedPorts?: number[];
  rateLimit?: RateLimitPolicy;
  content?: ContentPolicy;
}

/** Where a client wants to go, as the proxy parsed it (CONNECT target or absolute URI). */
export interface Target {
  /** Lower-case ASCII host without trailing dot; IPv6 without brackets. */
  host: string;
  port: number;
}

/** The answer of the policy. The proxy turns it into bytes, the log and the metrics in one place. */
export interface Decision {
  allow: boolean;
  reason: ReasonCode;
  /** The entry that decided: an allowlist or denylist pattern, a CIDR, a content rule, or a level. */
  rule?: string;
  environment: string;
}
