import { defineConfig } from 'vitest/config';

// In the pure cgroup v2 guest (scripts/cgroup2-vm: QEMU without KVM) everything runs ~6× slower.
const slow = process.env.FAAS_CGROUP2_VM === '1' ? 6 : 1;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000 * slow,
    hookTimeout: 60_000 * slow,
    // Integration suites each start a gateway with its own workers; on a 2-core machine
    // running them one file at a time keeps timings honest.
    fileParallelism: false,
  },
});
