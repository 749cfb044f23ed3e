// What a reload applies and what it leaves for a restart, key by key.

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { applyLiveConfig } from '../../src/config/live.js';
import type { Config } from '../../src/config/types.js';

const load = (yaml: string): Config => {
  const loaded = parseConfig(yaml, '/etc/egress.yaml', {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.config;
};

describe('applyLiveConfig', () => {
  it.each([
    ['nothing changed', '', '', []],
    ['alwaysAllow is live', '', 'defaults: {alwaysAllow: [a.example.com]}', []],
    ['config environments are live', '', 'environments: [{id: x, access: none}]', []],
    ['a timeout needs a restart', '', 'proxy: {idleTimeoutMs: 5000}', ['proxy.idleTimeoutMs']],
    ['a listener needs a restart', '', 'admin: {listen: "127.0.0.1:4000"}', ['admin.listen.port']],
    ['the token is named, never shown', 'admin: {token: old-secret}', 'admin: {token: new-secret}', ['admin.token']],
    ['a resolve entry', '', 'upstream: {resolve: {a.example.com: 127.0.0.1}}', ['upstream.resolve.a.example.com']],
    ['a list changes whole', 'upstream: {allowPrivateNetworks: [10.0.0.0/8]}', 'upstream: {allowPrivateNetworks: [10.0.0.0/8, 192.168.0.0/16]}', ['upstream.allowPrivateNetworks']],
    ['auth is not live', '', 'auth: {required: true}', ['auth.required']],
  ])('%s', (_why, before, after, restart) => {
    const current = load(before);
    const next = load(after);
    const { config, restartNeeded } = applyLiveConfig(current, next);
    expect(restartNeeded).toEqual(restart);
    expect(config.defaults).toEqual(next.defaults);
    expect(config.environments).toEqual(next.environments);
    expect(config.proxy).toBe(current.proxy);
    expect(config.admin).toBe(current.admin);
    expect(config.auth).toBe(current.auth);
    expect(Object.isFrozen(config)).toBe(true);
    expect(restartNeeded.join(' ')).not.toContain('secret');
  });
});
