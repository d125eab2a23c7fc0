import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['workers/**/*.test.ts', 'src/**/*.test.ts', 'scripts/**/*.test.ts', 'test/**/*.test.ts'],
    // test/fullsize/ is `npm run test:fullsize` (vitest.fullsize.config.ts): opt-in, it writes 9 GiB and runs for minutes
    exclude: ['**/node_modules/**', 'test/fullsize/**'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/skip-webgpu-reporter.ts'],
  },
});
