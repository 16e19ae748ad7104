import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // onnxruntime-node is a native addon: separate processes are its safest home
    pool: 'forks',
  },
});
