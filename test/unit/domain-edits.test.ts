// Edits of the domain lists (PATCH) as pure functions: what they change, and that a list
// compiled as an overlay over the previous tables answers every lookup as a fresh compile does.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileDefaults, compileEnvironment } from '../../src/policy/decide.js';
import { editDomainLists } from '../../src/policy/domain-edits.js';
import { compileDomainSet, type CompiledDomainSet } from '../../src/policy/domain-set.js';
import { parseDomainPattern } from '../../src/policy/domains.js';
import { validateEnvironment } from '../../src/policy/environment.js';
import type { EnvironmentPolicy } from '../../src/policy/types.js';

const defaults = compileDefaults({ trusted: [], alwaysAllow: [] });
const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

function policyOf(allowedDomains: string[]): EnvironmentPolicy {
  const result = validateEnvironment({ id: 'e', access: 'custom', allowedDomains, allowedPorts: [80, 443, 8443] });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

function fresh(list: readonly string[]) {
  return compileDomainSet(list.map((e) => (parseDomainPattern(e) as { ok: true; pattern: Parameters<typeof compileDomainSet>[0][number] }).pattern));
}

// A small alphabet, so that edits hit hosts other entries also name (with and without ports).
const entry = fc
  .tuple(fc.constantFrom('', '*.'), fc.constantFrom('a', 'b', 'a.b', 'c.a.b'), fc.constantFrom('.example.com', '.example.org'), fc.constantFrom('', ':443', ':8443'))
  .map(([w, l, d, p]) => `${w}${l}${d}${p}`)
  .filter((e) => parseDomainPattern(e).ok);
const ip = fc.constantFrom('10.0.0.1', '10.0.0.1:8443', '[2001:db8::1]:443');
const edit = fc.record({ add: fc.array(fc.oneof(entry, ip), { maxLength: 3 }), remove: fc.array(fc.oneof(entry, ip), { maxLength: 3 }) });
const probes = ['a.example.com', 'x.a.example.com', 'c.a.b.example.com', 'a.b.example.org', 'b.example.com', 'z.c.a.b.example.org', '10.0.0.1', '2001:db8::1', 'nowhere.example.net'];

describe('editDomainLists', () => {
  it('removes, then adds what is not there yet, and reports exactly what changed', () => {
    const policy = policyOf(['a.example.com', 'b.example.com', 'a.example.com:8443']);
    const result = editDomainLists(policy, { remove: { allowedDomains: ['b.example.com', 'gone.example.com'] }, add: { allowedDomains: ['a.example.com', 'c.example.com', 'c.example.com'], deniedDomains: ['d.example.com'] } });
    if (!result.ok) throw new Error('valid');
    expect(result.value.allowedDomains).toEqual(['a.example.com', 'a.example.com:8443', 'c.example.com']);
    expect(result.value.deniedDomains).toEqual(['d.example.com']);
    expect(result.changes.allowedDomains).toEqual({ added: ['c.example.com'], removed: ['b.example.com'], entries: 3 });
    expect({ ...result.value, allowedDomains: policy.allowedDomains, deniedDomains: [] }).toEqual(policy);
    // The policy it was made from is untouched.
    expect(policy.allowedDomains).toEqual(['a.example.com', 'b.example.com', 'a.example.com:8443']);
  });

  it('refuses what it cannot read, with the path of each error', () => {
    const result = editDomainLists(policyOf([]), { add: { allowedDomains: ['ok.example.com', '*', 3], other: [] }, remove: 'x', replace: {} });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toEqual(['add.allowedDomains[1]', 'add.allowedDomains[2]', 'add.other', 'remove', 'replace']);
  });
});

/** The policy's compiled allowlist answers every probe as a fresh compile of the same list. */
function expectFreshAnswers(policy: EnvironmentPolicy): void {
  const compiled = compileEnvironment(policy, defaults).allow;
  const reference = fresh(policy.allowedDomains);
  expect(compiled.size).toBe(reference.size);
  for (const host of probes) {
    for (const port of [80, 443, 8443]) {
      for (const d of ['any', new Set([80, 443])] as const) expect(compiled.match(host, port, d)).toEqual(reference.match(host, port, d));
    }
  }
}

describe('a list compiled over the previous tables', () => {
  it('answers every lookup as a fresh compile of the same list, across edits', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(entry, ip), { maxLength: 12 }), fc.array(edit, { minLength: 1, maxLength: 6 }), (start, edits) => {
        let policy = policyOf(start);
        compileEnvironment(policy, defaults);
        for (const e of edits) {
          const result = editDomainLists(policy, { add: { allowedDomains: e.add }, remove: { allowedDomains: e.remove } });
          if (!result.ok) throw new Error(JSON.stringify(result.errors));
          policy = result.value;
          expectFreshAnswers(policy);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('answers as a fresh compile when a whole list is sent again (PUT) with entries inserted, removed or replaced', () => {
    const splice = fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.array(fc.oneof(entry, ip), { maxLength: 3 }));
    fc.assert(
      fc.property(fc.array(fc.oneof(entry, ip), { maxLength: 12 }), fc.array(fc.array(splice, { maxLength: 3 }), { minLength: 1, maxLength: 4 }), (start, puts) => {
        let policy = policyOf(start);
        compileEnvironment(policy, defaults);
        for (const splices of puts) {
          const list = [...policy.allowedDomains];
          for (const [at, count, items] of splices) list.splice(at % (list.length + 1), count, ...items);
          const result = validateEnvironment({ id: 'e', access: 'custom', allowedDomains: list, allowedPorts: [80, 443, 8443] }, undefined, policy);
          if (!result.ok) throw new Error(JSON.stringify(result.errors));
          policy = result.value;
          expectFreshAnswers(policy);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('compiles a PUT that changes one entry of a long list over the previous tables', () => {
    const entries = Array.from({ length: 2000 }, (_, i) => `h${i}.example.com`);
    const policy = policyOf(entries);
    const first = compileEnvironment(policy, defaults).allow as CompiledDomainSet;
    const list = [...entries];
    list.splice(7, 1, 'new.example.com');
    const next = validateEnvironment({ ...policy, allowedDomains: list }, undefined, policy);
    if (!next.ok) throw new Error('valid');
    const second = compileEnvironment(next.value, defaults).allow as CompiledDomainSet;
    expect(second.compiled.tables).toBe(first.compiled.tables);
    expect(second.compiled.overlaySize).toBe(2);
    expect(second.match('new.example.com', 443, 'any')).toMatchObject({ matched: true, portAllowed: true });
    expect(second.match('h7.example.com', 443, 'any')).toEqual({ matched: false });
    expect(second.match('h8.example.com', 443, 'any')).toMatchObject({ matched: true });
  });

  it('keeps the previous tables for a small edit of a long list, and compiles afresh once edits pile up', () => {
    let policy = policyOf(Array.from({ length: 2000 }, (_, i) => `h${i}.example.com`));
    const first = compileEnvironment(policy, defaults).allow as CompiledDomainSet;
    const edited = editDomainLists(policy, { add: { allowedDomains: ['new.example.com'] }, remove: { allowedDomains: ['h7.example.com'] } });
    if (!edited.ok) throw new Error('valid');
    const second = compileEnvironment(edited.value, defaults).allow as CompiledDomainSet;
    expect(second.compiled.tables).toBe(first.compiled.tables);
    expect(second.match('new.example.com', 443, 'any')).toMatchObject({ matched: true, portAllowed: true });
    expect(second.match('h7.example.com', 443, 'any')).toEqual({ matched: false });
    expect(second.match('h8.example.com', 443, 'any')).toMatchObject({ matched: true });

    policy = edited.value;
    let last = second;
    for (let i = 0; i < 12; i++) {
      const more = editDomainLists(policy, { add: { allowedDomains: Array.from({ length: 100 }, (_, j) => `m${i}-${j}.example.com`) } });
      if (!more.ok) throw new Error('valid');
      policy = more.value;
      last = compileEnvironment(policy, defaults).allow as CompiledDomainSet;
    }
    // 1 202 entries edited in all, past the overlay's limit of max(1024, size / 16).
    expect(last.compiled.tables).not.toBe(first.compiled.tables);
    expect(last.match('m11-99.example.com', 443, 'any')).toMatchObject({ matched: true });
    expect(last.match('h7.example.com', 443, 'any')).toEqual({ matched: false });
  });
});

describe('the versions of an edited list', () => {
  it('are not kept once the newer one is compiled', async () => {
    // In a child process with the collector exposed: the previous versions of a list an edit
    // was made from (and by PUT, from its near copy) must be collectable once the new version
    // is compiled, or every version an environment ever had stays in memory.
    const script = `
      import { compileDefaults, compileEnvironment } from './dist/policy/decide.js';
      import { editDomainLists } from './dist/policy/domain-edits.js';
      import { validateEnvironment } from './dist/policy/environment.js';
      const defaults = compileDefaults({ trusted: [], alwaysAllow: [] });
      let policy = validateEnvironment({ id: 'e', access: 'custom', allowedDomains: Array.from({ length: 1000 }, (_, i) => 'h' + i + '.example.com') }).value;
      compileEnvironment(policy, defaults);
      const versions = [new WeakRef(policy.allowedDomains)];
      for (let i = 0; i < 20; i++) {
        policy = i % 2 === 0
          ? editDomainLists(policy, { add: { allowedDomains: ['p' + i + '.example.com'] } }).value
          : validateEnvironment({ ...policy, allowedDomains: [...policy.allowedDomains, 'u' + i + '.example.com'] }, undefined, policy).value;
        compileEnvironment(policy, defaults);
        versions.push(new WeakRef(policy.allowedDomains));
      }
      // A WeakRef holds its target until the job that made it ends: collect after that.
      for (let i = 0; i < 4; i++) { await new Promise((r) => setTimeout(r, 10)); globalThis.gc(); }
      console.log(JSON.stringify(versions.map((v) => v.deref() !== undefined)));
    `;
    const { stdout } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: root });
    const alive = JSON.parse(stdout) as boolean[];
    expect(alive.at(-1)).toBe(true);
    expect(alive.slice(0, -1).map((a, i) => (a ? i : -1)).filter((i) => i >= 0)).toEqual([]);
  });
});
