// Mutation testing with StrykerJS, one folder of the core at a time: `npm run mutate [-- folder ...]`
// (scripts/mutate.mjs sets STRYKER_FOLDER). Each folder is mutated and checked against only the test
// files that exercise it; per-test coverage then runs, for each mutant, only the files that reach it.
// How to read the results: docs/testing.md.

/** The folders, what is mutated in each and the test files that judge the mutants. */
export const folders = {
  receiver: {
    mutate: ['src/core/receiver/**/*.ts', 'src/core/backoff.ts'],
    // surface.test.ts: stats, events, log lines, ctx.reject, source error reporting.
    tests: ['test/receiver/*.test.ts', 'test/reliability/receiver-crash.test.ts'],
  },
  sources: {
    mutate: ['src/core/sources/**/*.ts'],
    // test/sources/rest-time.test.ts: reading by time and the buffer fill check of rest.ts.
    tests: ['test/sources/*.test.ts', 'test/receiver/receiver.test.ts', 'test/receiver/ordering.test.ts'],
  },
  flespi: {
    mutate: ['src/core/flespi/**/*.ts'],
    // subscription.ts (MQTT topic, payloads, gap fill) is used by the MQTT source and the live tail.
    tests: [
      'test/client/*.test.ts',
      'test/flespi/*.test.ts',
      'test/sources/*.test.ts',
      'test/webview/tailSession.test.ts',
      'test/receiver/receiver.test.ts',
      'test/reliability/hostile-flespi.test.ts',
    ],
  },
  handlers: {
    mutate: ['src/core/handlers/**/*.ts'],
    // test/custom and dead-letters-config build handlers through the registry (custom classes, onUndeliverable);
    // schemas.test.ts checks the entry schemas (entrySchema.ts).
    tests: [
      'test/sinks/*.test.ts',
      'test/wialon/handler.test.ts',
      'test/wialon/handler-edges.test.ts',
      'test/config/config.test.ts',
      'test/config/dead-letters-config.test.ts',
      'test/config/schemas.test.ts',
      // Not scaffold.test.ts: it builds typings from the source files, which Stryker has instrumented.
      'test/custom/loader.test.ts',
      'test/custom/registry.test.ts',
      'test/reliability/bad-sink-settings.test.ts',
    ],
  },
  wialon: {
    mutate: ['src/core/wialon/**/*.ts'],
    tests: [
      'test/wialon/decode.test.ts',
      'test/wialon/edges.test.ts',
      'test/wialon/encode.test.ts',
      'test/wialon/encodeFast.test.ts',
      'test/wialon/receiver.test.ts',
    ],
  },
};

const name = process.env.STRYKER_FOLDER ?? 'receiver';
const folder = folders[name];
if (!folder) throw new Error(`STRYKER_FOLDER must be one of ${Object.keys(folders).join(', ')}, got ${name}`);

// STRYKER_MUTATE (comma-separated globs, from `npm run mutate -- folder --only ...`) narrows a run to some files.
const only = process.env.STRYKER_MUTATE?.split(',').filter(Boolean);
// A narrowed run has its own reports and sandbox (`handlers.http+topic`), so parts of one folder can run
// at once and none overwrites the whole folder's report.
const run = only?.length ? `${name}.${only.map((f) => f.replace(/^.*\//, '').replace(/\.ts$/, '')).join('+')}` : name;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: only?.length ? only : folder.mutate,
  testRunner: 'tap',
  tap: {
    testFiles: folder.tests,
    // The same preloads as scripts/run-tests.mjs: TypeScript through tsx, and a default timeout per test.
    nodeArgs: ['-r', '{{hookFile}}', '--import', 'tsx', '--import', './scripts/test-timeout.mjs', '{{testFile}}'],
    forceBail: true,
  },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.stryker.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // Mutants in module-level code would need every test file for each of them; they are left out.
  ignoreStatic: true,
  // Two shared cores: one test process at a time, and time enough for the slow reliability tests.
  concurrency: 1,
  timeoutMS: 20_000,
  timeoutFactor: 2,
  incremental: true,
  incrementalFile: `reports/mutation/${run}.incremental.json`,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${run}.html` },
  jsonReporter: { fileName: `reports/mutation/${run}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  ignorePatterns: ['.stryker-tmp', 'dist', 'out', 'reports', '.e2e', '.vscode-test', 'bench/results', 'test-output', 'media', '*.vsix'],
  // One sandbox per run, so two folders (or parts of one) can be mutated at once.
  tempDirName: `.stryker-tmp/${run}`,
  cleanTempDir: true,
};
