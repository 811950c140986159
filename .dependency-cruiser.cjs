// The dependency rules of docs/architecture.md, checked by `npm run deps` (and in `.ci/run` through lint):
// apps are process shells that no workspace imports, packages never reach into apps, and no module cycles.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-app-imports-an-app',
      comment:
        'Apps are thin process shells over packages; an app that needs another app’s code needs a package.',
      severity: 'error',
      from: { path: '^apps/([^/]+)/' },
      to: { path: '^apps/([^/]+)/', pathNot: '^apps/$1/' },
    },
    {
      name: 'no-package-imports-an-app',
      comment: 'Dependencies point one way: apps → packages.',
      severity: 'error',
      from: { path: '^packages/' },
      to: { path: '^apps/' },
    },
    {
      name: 'no-cycles',
      comment: 'A cycle makes two modules one: neither can change or be tested alone.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-test-code-in-sources',
      comment: 'Sources never import test files or test-only workspaces.',
      severity: 'error',
      from: { path: '^(packages|apps)/[^/]+/src/' },
      to: { path: '(^tests/|/test/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(/dist/|/node_modules/|/test-results/|\\.d\\.ts$)' },
    tsPreCompilationDeps: true,
    // Workspace imports resolve to the sources behind each package's exports, so the graph is the
    // code's, built or not.
    tsConfig: { fileName: 'dependency-cruiser.tsconfig.json' },
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'types', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.json'],
      mainFields: ['types', 'main'],
    },
    reporterOptions: {
      archi: { collapsePattern: '^(packages|apps|tests)/[^/]+' },
    },
  },
};
