// Hand edits: files that people or config management write into stateDir/environments are
// picked up without a call. fs.watch fires several events per save (and per atomic rename),
// so events are debounced into one re-read.

import { watch, type FSWatcher } from 'node:fs';

export function watchFolder(dir: string, onChange: () => void, debounceMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      // Our own temporary files (atomic.ts) start with a dot; their rename is the event that counts.
      if (name && name.startsWith('.')) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    return () => {};
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
