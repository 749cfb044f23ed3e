// Polls a condition until it holds or the time is up; resolves with how long it took.
export async function eventually(check: () => Promise<boolean> | boolean, withinMs: number, everyMs = 20): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`not within ${withinMs} ms`);
}
