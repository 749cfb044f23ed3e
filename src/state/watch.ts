// Hand edits: files that people or config management write into stateDir/environments are
// picked up without a call. fs.watch fires several events per save (and per atomic rename),
// so events are debounced into one call, with the names seen (undefined when the platform
// did not say which file changed).

import { watch, type FSWatcher } from 'node:fs';

export function watchFolder(dir: string, onChange: (names: string[] | undefined) => void, debounceMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let names = new Set<string>();
  let unnamed = false;
  const fire = (): void => {
    const batch = unnamed ? undefined : [...names];
    names = new Set();
    unnamed = false;
    onChange(batch);
  };
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      // Our own temporary files (atomic.ts) start with a dot; their rename is the event that counts.
      if (name && name.startsWith('.')) return;
      if (name) names.add(name);
      else unnamed = true;
      clearTimeout(timer);
      timer = setTimeout(fire, debounceMs);
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
