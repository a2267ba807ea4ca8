// Mutation testing of the core with StrykerJS, one folder after another (see docs/testing.md).
// Usage: npm run mutate [-- folder ...] [--only file,...]
//   folders: receiver, sources, flespi, handlers, wialon (default: all)
//   --only src/core/backoff.ts,...: mutate only these files (globs) of the folder given
// Runs niced, one test process at a time; incremental, so a second run only tests what changed.
import { spawnSync } from 'node:child_process';
import { folders } from '../stryker.config.mjs';

const all = Object.keys(folders);
const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1] : undefined;
const asked = args;
if (onlyAt >= 0 && (!only || asked.length !== 1)) {
  console.error('--only needs one folder and a comma-separated list of files, e.g. npm run mutate -- receiver --only src/core/backoff.ts');
  process.exit(2);
}
const unknown = asked.filter((f) => !all.includes(f));
if (unknown.length > 0) {
  console.error(`unknown folder ${unknown.join(', ')}: use ${all.join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const folder of asked.length > 0 ? asked : all) {
  console.log(`\n=== mutate ${folder}: ${folders[folder].mutate.join(' ')} against ${folders[folder].tests.join(' ')}`);
  const stryker = ['node_modules/@stryker-mutator/core/bin/stryker.js', 'run', 'stryker.config.mjs'];
  const r = spawnSync('nice', ['-n', '10', process.execPath, ...stryker], {
    stdio: 'inherit',
    env: { ...process.env, STRYKER_FOLDER: folder, ...(only ? { STRYKER_MUTATE: only } : {}) },
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
