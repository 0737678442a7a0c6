import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files two at a time; each test makes its own scratch home.
    pool: 'forks',
    maxWorkers: 2,
  },
});
