// Flat config shared by every workspace; each package runs `eslint .` from its own folder.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import { readdirSync, readFileSync } from 'node:fs';

// The apps' package names, read from apps/*/package.json: no workspace imports an app (apps are process shells).
const appsDir = new URL('./apps/', import.meta.url);
const appPackages = readdirSync(appsDir).map(
  (dir) => JSON.parse(readFileSync(new URL(`${dir}/package.json`, appsDir), 'utf8')).name,
);

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.turbo/**', '**/test-results/**', '**/coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: appPackages.flatMap((name) => [name, `${name}/*`]),
              message:
                'Apps are process shells: move the code you need into a package (docs/architecture.md).',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Use @lits-ddp/counter-rng: every draw must be seeded and keyed.',
        },
      ],
    },
  },
  {
    // A promise returned un-awaited from try/catch/finally rejects outside the handler (and, with an
    // await in finally, as an unhandled rejection that ends the process).
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true } },
    rules: {
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
