// Reads the commits out of a pushed packfile (gitformat-pack), to tell a fast-forward from a
// force-update without the repository: an update old → new is a fast-forward when walking the
// parents of `new` through the pushed commits reaches `old`. Blobs and trees are inflated only
// to find where they end. Commits deltified against another object of the pack (OFS_DELTA) are
// resolved; `git pack-objects --thin` uses only trees and blobs of the remote as out-of-pack
// bases, so every pushed commit is readable here. An update that cannot be proven a
// fast-forward is treated as a force-update.

import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';

const COMMIT = 1;
const OFS_DELTA = 6;
const REF_DELTA = 7;
const TYPE_NAMES: Record<number, string> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

export type PackCommits = { ok: true; parents: Map<string, string[]> } | { ok: false; why: string };

interface Entry {
  type: number;
  data?: Buffer;
}

function inflateAt(pack: Buffer, offset: number): { data: Buffer; used: number } {
  const result = inflateSync(pack.subarray(offset), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
  return { data: result.buffer, used: result.engine.bytesWritten };
}

/** git's delta format: source and target sizes, then copy-from-base and insert instructions. */
function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = delta[pos++] as number;
      value |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  varint(); // source size
  const out = Buffer.alloc(varint());
  let written = 0;
  while (pos < delta.length) {
    const op = delta[pos++] as number;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) offset |= (delta[pos++] as number) << (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) size |= (delta[pos++] as number) << (8 * i);
      if (size === 0) size = 0x10000;
      base.copy(out, written, offset, offset + size);
      written += size;
    } else if (op > 0) {
      delta.copy(out, written, pos, pos + op);
      written += op;
      pos += op;
    } else throw new Error('bad delta instruction');
  }
  return out;
}

export function readPackCommits(pack: Buffer): PackCommits {
  try {
    if (pack.length === 0) return { ok: true, parents: new Map() };
    if (pack.length < 12 || pack.toString('latin1', 0, 4) !== 'PACK') return { ok: false, why: 'not a packfile' };
    const count = pack.readUInt32BE(8);
    const byOffset = new Map<number, Entry>();
    const parents = new Map<string, string[]>();
    let offset = 12;
    for (let i = 0; i < count; i++) {
      const start = offset;
      let byte = pack[offset++] as number;
      const type = (byte >> 4) & 7;
      while (byte & 0x80) byte = pack[offset++] as number;
      let base: Entry | undefined;
      if (type === OFS_DELTA) {
        byte = pack[offset++] as number;
        let distance = byte & 0x7f;
        while (byte & 0x80) {
          byte = pack[offset++] as number;
          distance = ((distance + 1) << 7) | (byte & 0x7f);
        }
        base = byOffset.get(start - distance);
      } else if (type === REF_DELTA) {
        offset += 20; // base outside the pack (thin): never a commit, so never needed here
      }
      const { data, used } = inflateAt(pack, offset);
      offset += used;
      let entry: Entry = { type };
      if (type === COMMIT) entry = { type, data };
      else if (type === OFS_DELTA && base?.type === COMMIT && base.data) entry = { type: COMMIT, data: applyDelta(base.data, data) };
      else if (type === OFS_DELTA && base) entry = { type: base.type };
      byOffset.set(start, entry);
      if (entry.type === COMMIT && entry.data) {
        const id = createHash('sha1').update(`${TYPE_NAMES[COMMIT]} ${entry.data.length}\0`).update(entry.data).digest('hex');
        const header = entry.data.toString('latin1', 0, entry.data.indexOf('\n\n') >>> 0 || entry.data.length);
        parents.set(id, [...header.matchAll(/^parent ([0-9a-f]{40})$/gm)].map((m) => m[1] as string));
      }
    }
    return { ok: true, parents };
  } catch (error) {
    return { ok: false, why: `unreadable pack: ${(error as Error).message}` };
  }
}

/** True when `newId` descends from `oldId` through commits of this push. */
export function isFastForward(parents: Map<string, string[]>, oldId: string, newId: string, limit = 100_000): boolean {
  const queue = [newId];
  const seen = new Set<string>();
  while (queue.length > 0 && seen.size < limit) {
    const id = queue.shift() as string;
    if (id === oldId) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const parent of parents.get(id) ?? []) queue.push(parent);
  }
  return false;
}
