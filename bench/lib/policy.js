// Policy lookup cost per decision and compile time, for environments of 10, 1 000 and
// 100 000 entries, in-process against the built policy engine.
import { compileDefaults, compileEnvironment, decideTarget } from '../../dist/policy/decide.js';
import { parseAuthority } from '../../dist/proxy/target.js';
import { spread } from './stats.js';

export async function policyFigures(quick) {
  const defaults = compileDefaults({ trusted: [], alwaysAllow: [] });
  const sizes = [10, 1_000, 100_000].map((size) => {
    const domains = Array.from({ length: size }, (_, i) => (i % 10 === 0 ? `*.w${i}.zone${i % 97}.example.com` : `h${i}.zone${i % 97}.example.com`));
    // The strings are made the way the proxy gets them: entries by JSON.parse (the admin API's
    // body, the policy file), hosts by parsing a CONNECT authority the HTTP parser decoded from
    // bytes. Strings built by template literals are concatenations V8 flattens behind a wrapper
    // on first read, one more indirection per compare than the proxy ever has: in one process,
    // 100 000 entries measured 1.40-1.56 x the 10-entry figure with those strings and 1.23-1.38
    // x with these (docs/performance.md, "What the lookup bench measured").
    const policyText = JSON.stringify({ id: 'bench', name: 'bench', access: 'custom', allowedDomains: domains, includeDefaults: false, deniedDomains: ['denied.example.com'], archived: false });
    const compileMs = [];
    let env;
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      // New list objects each round: compiled lists are cached by list object, so the same
      // one again would measure a cache hit. Entries are parsed and compiled, as on a reload.
      const policy = JSON.parse(policyText);
      const t = performance.now();
      env = compileEnvironment(policy, defaults);
      compileMs.push(performance.now() - t);
    }
    // Hits on exact entries, hits through a wildcard three labels deep, and misses.
    const targets = Array.from({ length: 1024 }, (_, i) => {
      const k = (i * 7919) % size;
      const host = i % 3 === 0 ? `h${k}.zone${k % 97}.example.com` : i % 3 === 1 ? `a.b.w${k - (k % 10)}.zone${(k - (k % 10)) % 97}.example.com` : `miss${i}.nowhere.example.org`;
      const parsed = parseAuthority(Buffer.from(`${host}:443`, 'latin1').toString('latin1'));
      if (!parsed.ok) throw new Error(`bench target ${host}: ${parsed.why}`);
      return parsed.target;
    });
    return { size, env, targets, compileMs, nsPerDecision: [] };
  });
  // In rounds, each round timing every size once, so the machine's drift lands on all three
  // alike: the goal is a ratio between them.
  // Many short rounds rather than a few long ones: on a shared machine the speed drifts within
  // seconds, and a quarter-second round keeps the three sizes of a round on the same footing.
  const rounds = quick ? 5 : 20;
  const iterations = quick ? 200_000 : 250_000;
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    for (const { env, targets, nsPerDecision } of sizes) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) if (decideTarget(env, targets[i & 1023]).allow) sink++;
      nsPerDecision.push(Number(process.hrtime.bigint() - t) / iterations);
    }
  }
  if (sink < 0) console.log(sink);
  const out = {};
  const [smallest] = sizes;
  for (const { size, nsPerDecision, compileMs } of sizes) {
    out[`ns per decision, ${size} entries`] = { ...spread(nsPerDecision), runs: nsPerDecision };
    out[`compile ms, ${size} entries`] = spread(compileMs);
  }
  // The goal's ratio, paired as the forward figures' is: a round times every size within a
  // fraction of a second, so the ratio within a round cancels the machine's drift between
  // rounds, which the ratio of two medians taken over different rounds does not.
  for (const { size, nsPerDecision } of sizes.slice(1)) {
    const ratios = nsPerDecision.map((ns, r) => ns / smallest.nsPerDecision[r]);
    out[`÷ ${smallest.size} entries, per round, ${size} entries`] = { ...spread(ratios), runs: ratios };
  }
  return out;
}
