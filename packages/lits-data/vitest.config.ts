import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Generous: other engineers' work shares the 2 cores, and some tests spawn the CLI or read 100 MB volumes.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
