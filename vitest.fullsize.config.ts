/** `npm run test:fullsize`: the full-size CLI checks against diffusers (test/fullsize/), opt-in and slow. */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/fullsize/**/*.test.ts'],
    environment: 'node',
    testTimeout: 3_600_000,
    hookTimeout: 1_800_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
