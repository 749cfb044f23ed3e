// The answer to a refused push in git's own protocol (report-status, in side-band channel 1
// when the client asked for side-band-64k), so `git push` prints
// `! [remote rejected] main -> main (push to refs/heads/main refused by egress-gate: …)`.

import { flushPkt, pktLine } from './pktline.js';
import type { RefVerdict } from './push-policy.js';

export function reportStatus(verdicts: RefVerdict[], capabilities: string[]): Buffer {
  const lines = [pktLine('unpack ok\n')];
  const firstReason = verdicts.find((v) => !v.ok)?.reason ?? 'refused by egress-gate';
  // Nothing is forwarded when one ref is refused: the others are reported refused as well.
  for (const v of verdicts) lines.push(pktLine(v.ok ? `ng ${v.ref} not pushed: ${firstReason}\n` : `ng ${v.ref} ${v.reason}\n`));
  lines.push(flushPkt);
  const report = Buffer.concat(lines);
  if (!capabilities.includes('side-band-64k') && !capabilities.includes('side-band')) return report;
  const max = capabilities.includes('side-band-64k') ? 65515 : 995;
  const out: Buffer[] = [];
  for (let i = 0; i < report.length; i += max) out.push(pktLine(Buffer.concat([Buffer.from([1]), report.subarray(i, i + max)])));
  out.push(flushPkt);
  return Buffer.concat(out);
}
