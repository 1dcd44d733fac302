// The SDK warns once per process that releases from 2027 need Node 22 (our Lambda runtime is Node 22;
// these tests run on the machine's Node 20): noise in every test file's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Jest: TypeScript through ts-jest (type-checking is done once by `tsc --noEmit` in `npm test`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true }, diagnostics: false }],
  },
  // Middy (used by later handlers) is ESM-only: let ts-jest transform it.
  transformIgnorePatterns: ['/node_modules/(?!@middy/)'],
  testTimeout: 60000,
  // Two test files at a time even on a 2-core machine (Jest's default there is one): most suites wait
  // on their own DynamoDB Local, fauxqs or simulator, each on its own ports, tables and temp dirs.
  maxWorkers: Math.max(2, require('node:os').availableParallelism() - 1),
  // A worker left holding a large heap (fold-hours' 200,000-bucket fold leaves about 570 MB) was slow
  // to exit at the end of a run ("a worker process has failed to exit gracefully"): such a worker is
  // replaced by a fresh one once its file is done.
  workerIdleMemoryLimit: '512MB',
};
