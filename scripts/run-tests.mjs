// Runs every test/**/*.test.ts with Node's test runner (Node 20 has no glob for --test).
// Usage: node scripts/run-tests.mjs [substring ...]   (only files whose path contains one of them)
//
// Fail fast instead of hanging: every test without a `timeout` of its own gets TEST_TIMEOUT_MS
// (default 30 s; the slowest test takes about 9 s on an idle 2-core machine) through
// scripts/test-timeout.mjs, and each file gets FILE_TIMEOUT_MS (default 5 min) through
// --test-timeout, which in Node 20 bounds a whole file (its hooks and leaked handles included).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'e2e' ? [] : find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const filters = process.argv.slice(2);
const files = find('test')
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(', ')}`);
  process.exit(1);
}
const fileTimeout = Number(process.env.FILE_TIMEOUT_MS) || 300_000;
const preload = new URL('test-timeout.mjs', import.meta.url).href;
const args = ['--import', 'tsx', '--import', preload, '--test', '--test-concurrency=2', `--test-timeout=${fileTimeout}`, ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
