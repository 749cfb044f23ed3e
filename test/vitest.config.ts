import { defineConfig } from 'vitest/config';

// Two cores: two test files at a time. Every test talks to real sockets on loopback, so the
// timeouts are generous and no test measures speed (benchmarks do, in bench/).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
