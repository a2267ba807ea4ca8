// Mutation testing of the core with StrykerJS, one folder after another (see docs/testing.md).
// Usage: npm run mutate [-- folder ...]   folders: receiver, sources, flespi, handlers, wialon (default: all)
// Runs niced, one test process at a time; incremental, so a second run only tests what changed.
import { spawnSync } from 'node:child_process';
import { folders } from '../stryker.config.mjs';

const all = Object.keys(folders);
const asked = process.argv.slice(2);
const unknown = asked.filter((f) => !all.includes(f));
if (unknown.length > 0) {
  console.error(`unknown folder ${unknown.join(', ')}: use ${all.join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const folder of asked.length > 0 ? asked : all) {
  console.log(`\n=== mutate ${folder}: ${folders[folder].mutate.join(' ')} against ${folders[folder].tests.join(' ')}`);
  const stryker = ['node_modules/@stryker-mutator/core/bin/stryker.js', 'run', 'stryker.config.mjs'];
  const r = spawnSync('nice', ['-n', '10', process.execPath, ...stryker], { stdio: 'inherit', env: { ...process.env, STRYKER_FOLDER: folder } });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
