// A bounded memo for answers asked again and again with the same few keys (hosts, addresses):
// computed once, kept in `map`, and all forgotten at once when a client walks through more
// keys than `max`, so no input can make it grow without bound.

export function remember<V>(map: Map<string, V>, key: string, compute: () => V, max = 4096): V {
  let value = map.get(key);
  if (value === undefined && !map.has(key)) {
    if (map.size >= max) map.clear();
    value = compute();
    map.set(key, value);
  }
  return value as V;
}
