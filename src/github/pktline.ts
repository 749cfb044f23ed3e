// git's pkt-line framing (gitprotocol-common): four hex digits of length (including themselves),
// then the payload; 0000 is a flush. Here: the ref-update commands at the head of a
// git-receive-pack request, `<old> <new> <ref>\0<capabilities>` on the first line.

export interface RefUpdate {
  oldId: string;
  newId: string;
  ref: string;
}

export type CommandsParse =
  | { state: 'more' }
  | { state: 'done'; updates: RefUpdate[]; capabilities: string[]; rest: Buffer }
  | { state: 'error'; why: string };

const ZERO = '0'.repeat(40);
export const isZeroId = (id: string): boolean => id === ZERO;

/** Parses the commands if `buffer` holds all of them (up to the flush); else asks for more. */
export function parseCommands(buffer: Buffer): CommandsParse {
  const updates: RefUpdate[] = [];
  let capabilities: string[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length < offset + 4) return { state: 'more' };
    const length = Number.parseInt(buffer.subarray(offset, offset + 4).toString('latin1'), 16);
    if (Number.isNaN(length) || (length > 0 && length < 4)) return { state: 'error', why: 'bad pkt-line length' };
    if (length === 0) return { state: 'done', updates, capabilities, rest: buffer.subarray(offset + 4) };
    if (buffer.length < offset + length) return { state: 'more' };
    let line = buffer.subarray(offset + 4, offset + length).toString('latin1');
    offset += length;
    if (line.endsWith('\n')) line = line.slice(0, -1);
    // A push certificate or shallow lines would precede the commands: not sent by http pushes we accept.
    if (line.startsWith('shallow ') || line.startsWith('push-cert')) return { state: 'error', why: `unsupported ${line.split(' ')[0]} in push` };
    const nul = line.indexOf('\0');
    if (nul >= 0) {
      capabilities = line.slice(nul + 1).split(' ').filter(Boolean);
      line = line.slice(0, nul);
    }
    const match = /^([0-9a-f]{40}) ([0-9a-f]{40}) (refs\/\S+)$/.exec(line);
    if (!match) return { state: 'error', why: 'bad ref-update command' };
    updates.push({ oldId: match[1] as string, newId: match[2] as string, ref: match[3] as string });
  }
}

export function pktLine(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
}

export const flushPkt = Buffer.from('0000', 'latin1');
