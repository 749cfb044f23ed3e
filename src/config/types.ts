// The validated, defaulted configuration. Paths are absolute by the time anything reads them.

export interface ListenAddress {
  host: string;
  port: number;
}

export interface Config {
  /** The file this came from, for error messages and reload. */
  file: string;
  proxy: {
    listen: ListenAddress;
    /** TCP connect to the upstream, per attempt. */
    connectTimeoutMs: number;
    /** A tunnel or kept-alive connection with no byte either way for this long is closed. */
    idleTimeoutMs: number;
    /** Request line and headers must arrive within this (slowloris). */
    headerTimeoutMs: number;
    maxHeaderBytes: number;
    /** Client connections open at once across all sessions; more are refused at accept. */
    maxConnections: number;
    /** SIGTERM: in-flight work gets this long before it is cut. */
    shutdownGraceMs: number;
  };
  admin: {
    listen: ListenAddress;
    token: string;
  };
  stateDir: string;
  store: {
    /** `file`: stateDir on this machine. `redis`: shared by every replica. */
    backend: 'file' | 'redis';
    redis: { url: string; keyPrefix: string };
  };
  /** Processes serving the same listeners (Node cluster); 1 is a single process. */
  workers: number;
  defaults: {
    allowlist: string;
    alwaysAllow: string[];
  };
  auth: {
    required: boolean;
    defaultEnvironment: string;
  };
  upstream: {
    resolve: Record<string, string>;
    allowPrivateNetworks: string[];
    caFiles: string[];
    dnsTimeoutMs: number;
    /** How long a system resolver answer is reused; 0 asks on every request. */
    dnsCacheMs: number;
  };
  limits: {
    requestsPerSecond: number;
    burst: number;
    maxConnections: number;
    /** Per session and destination host; 0 turns the bucket off. */
    perHostRequestsPerSecond: number;
    perHostBurst: number;
    /** Per environment, all sessions together; 0 turns the bucket off. */
    environmentRequestsPerSecond: number;
    environmentBurst: number;
    /** Tunnel bandwidth per session in bytes per second; 0 means unlimited. */
    bandwidthBytesPerSecond: number;
  };
  metrics: {
    /** Opt-in egress_host_requests_total{host}: unbounded by nature, so capped by maxHostLabels. */
    hostLabels: boolean;
    maxHostLabels: number;
  };
  logging: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  };
  inspection: {
    /** Folder of the inspection CA (ca.pem, ca.key). */
    caDir: string;
    leafCacheSize: number;
  };
  content: {
    /** Credential formats the operator adds to the built-in ones (policy/secrets.ts). */
    secretPatterns: { name: string; regex: string; allowedHosts?: string[] }[];
  };
  /** The GitHub proxy: on when credentialFile or credentialEnv names the operator's token. */
  github: {
    hosts: string[];
    apiHosts: string[];
    username: string;
    credentialFile: string;
    credentialEnv: string;
    maxPushBytes: number;
  };
  /** Environments declared in the config; files in stateDir/environments with the same id win. */
  environments: unknown[];
}
