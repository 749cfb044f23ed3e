// Durable, atomic file writes: a crash at any instant leaves either the old file or the new
// one, never half of either. Temporary file in the same folder (rename is atomic only within
// one file system), fsync of the data before the rename, fsync of the folder after it so the
// rename itself survives a power cut.
//
// Only the waits on the disk go through libuv's thread pool: the fsyncs, and freeing the blocks
// of a file that is replaced or removed. Open, write into the page cache, link, rename and close
// are synchronous: each costs microseconds on a local file system, while every trip through
// the pool waits a turn of an event loop that, under load, is busy forwarding. A 100 000-entry
// PUT spent 70-175 ms in eleven such trips.
//
// Freeing is the exception because it is not microseconds. A rename over a file drops that
// file's last name, and the kernel frees its blocks inside the rename: for a 3.3 MB policy on
// ext4 (mounted with discard) under load, renames took up to 111, 139 and 746 ms, with every
// connection of the proxy stopped meanwhile (docs/performance.md, "A policy write stopped the
// proxy"). So the file about to be replaced gets a second name first; the rename then only
// moves a directory entry, and that second name is removed on the thread pool once the new file
// is durable.

import { closeSync, fstatSync, fsync, linkSync, lstatSync, mkdirSync, openSync, renameSync, unlink, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);
const unlinkAsync = promisify(unlink);

/** The second name a file about to be replaced keeps until its blocks can be freed off the loop. */
const retiredName = (path: string): string => join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.old`);
/** What `retiredName` makes, for the sweep after a crash. */
const RETIRED = /^\..+\.[0-9a-f]{12}\.old$/;

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
  const retired = retiredName(path);
  let keptOld = false;
  try {
    linkSync(path, retired);
    keptOld = true;
  } catch {
    // No file to replace yet, or a file system without hard links: the plain rename frees it.
  }
  try {
    renameSync(temporary, path);
  } catch (error) {
    quietly(() => unlinkSync(temporary));
    // The old file still has its own name, so this frees nothing.
    if (keptOld) quietly(() => unlinkSync(retired));
    throw error;
  }
  try {
    await fsyncDirectory(dir);
  } finally {
    if (keptOld) unlink(retired, () => {});
  }
  return written;
}

/** Removed on the thread pool: the last name of a large file takes its blocks with it (above). */
export async function removeFileDurably(path: string): Promise<boolean> {
  // Most calls find nothing (file-store.ts clears a policy's other file names on every write):
  // those cost a stat, not a trip through the pool.
  if (lstatSync(path, { throwIfNoEntry: false }) === undefined) return false;
  try {
    await unlinkAsync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  await fsyncDirectory(dirname(path));
  return true;
}

/**
 * Second names a crash left between a write's rename and their removal (`names` are the entries
 * of `dir`): removed on the thread pool. Another process's write in flight loses nothing to
 * this: its file has its own name, and removing the second name early only frees the old
 * blocks sooner.
 */
export function removeRetired(dir: string, names: readonly string[]): void {
  for (const name of names) if (RETIRED.test(name)) unlink(join(dir, name), () => {});
}
