import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites each start a gateway with its own workers; on a 2-core machine
    // running them one file at a time keeps timings honest.
    fileParallelism: false,
  },
});
