// The registry of open connections that a policy change sweeps: a client connection's entry
// follows its requests in flight, pipelined ones included.

import { describe, expect, it } from 'vitest';
import { ConnectionRegistry } from '../../src/proxy/connections.js';

const client = () => {
  const c = { destroyed: 0, destroy: () => void (c.destroyed += 1) };
  return c;
};
const request = (host: string) => ({ sessionKey: 's', sessionId: undefined, environment: 'e', target: { host, port: 80 } });

describe('ConnectionRegistry.holdRequest', () => {
  it('keeps a connection registered while any request on it is in flight, under its latest target', () => {
    const registry = new ConnectionRegistry();
    const c = client();
    const first = registry.holdRequest(c, request('a.example.com'));
    const second = registry.holdRequest(c, request('b.example.com'));
    expect(registry.size).toBe(1);
    first();
    first(); // a second release of the same request changes nothing
    expect(registry.size).toBe(1);
    const seen: string[] = [];
    registry.sweep((connection) => {
      seen.push(connection.target.host);
      return true;
    });
    expect(seen).toEqual(['b.example.com']);
    second();
    expect(registry.size).toBe(0);
    expect(registry.sweep(() => false)).toBe(0);
    expect(c.destroyed).toBe(0);
  });

  it('a sweep that refuses the latest target closes the connection; another connection is untouched', () => {
    const registry = new ConnectionRegistry();
    const [c, d] = [client(), client()];
    registry.holdRequest(c, request('refused.example.com'));
    registry.holdRequest(d, request('fine.example.com'));
    expect(registry.sweep((connection) => connection.target.host !== 'refused.example.com')).toBe(1);
    expect([c.destroyed, d.destroyed]).toEqual([1, 0]);
    expect(registry.size).toBe(1);
  });
});
