import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Generous: other engineers' work shares the 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
