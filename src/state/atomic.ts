// Durable, atomic file writes: a crash at any instant leaves either the old file or the new
// one, never half of either. Temporary file in the same folder (rename is atomic only within
// one file system), fsync of the data before the rename, fsync of the folder after it so the
// rename itself survives a power cut.
//
// Only the two waits on the disk, the fsyncs, go through libuv's thread pool. Open, write into
// the page cache, rename, close and unlink are synchronous: each costs microseconds on a local
// file system, while every trip through the pool waits a turn of an event loop that, under
// load, is busy forwarding. A 100 000-entry PUT spent 70-175 ms in eleven such trips.

import { closeSync, fstatSync, fsync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);

/** What a reader's stat of the written file will show: its cache key (file-store.ts). */
export interface Written {
  size: number;
  mtimeMs: number;
}

function quietly(action: () => void): void {
  try {
    action();
  } catch {
    // Cleanup after a failure: the first error is the one to report.
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `data` in parts is written one part after the other, so a caller need not join them first. */
export async function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[], mode = 0o600): Promise<Written> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The leading dot and the .tmp suffix keep readers of the folder from taking it for a policy.
  const temporary = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', mode);
  let written: Written;
  try {
    for (const part of Array.isArray(data) ? data : [data]) writeFileSync(fd, part);
    await fsyncAsync(fd);
    const info = fstatSync(fd);
    written = { size: info.size, mtimeMs: info.mtimeMs };
  } catch (error) {
    quietly(() => closeSync(fd));
    quietly(() => unlinkSync(temporary));
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (error) {
    quietly(() => unlinkSync(temporary));
    throw error;
  }
  await fsyncDirectory(dir);
  return written;
}

export async function removeFileDurably(path: string): Promise<boolean> {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  await fsyncDirectory(dirname(path));
  return true;
}
