import { describe, expect, it } from 'vitest';
import { remember } from '../../src/policy/remember.js';

describe('remember', () => {
  it('computes a key once, null answers included, and forgets everything past the bound', () => {
    const map = new Map<string, string | null>();
    let computed = 0;
    const ask = (key: string): string | null =>
      remember(map, key, () => {
        computed += 1;
        return key === 'none' ? null : key.toUpperCase();
      }, 2);
    expect([ask('a'), ask('a'), ask('none'), ask('none')]).toEqual(['A', 'A', null, null]);
    expect(computed).toBe(2);
    expect(ask('b')).toBe('B');
    expect(map.size).toBe(1);
    expect(ask('a')).toBe('A');
    expect(computed).toBe(4);
  });
});
