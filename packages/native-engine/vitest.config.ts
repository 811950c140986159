import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A cold cache downloads a 230 MB wheel and extracts 680 MB before the first build.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
