// Preloaded by scripts/run-tests.mjs (--import) into every test file's process: gives each test()/it()
// that sets no `timeout` of its own a default one, so a test that never settles fails with a report
// naming it instead of hanging the run. Node 20's --test-timeout applies to a whole file, not to each
// test, so run-tests.mjs passes that too, as a backstop for hooks and leaked handles.
// TEST_TIMEOUT_MS overrides the default (ms); 0 turns it off.
import { syncBuiltinESMExports } from 'node:module';
import nodeTest from 'node:test';

const fallback = 30_000;
const fromEnv = Number(process.env.TEST_TIMEOUT_MS);
const timeout = process.env.TEST_TIMEOUT_MS !== undefined && Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : fallback;

function withDefaultTimeout(original) {
  const wrapped = function test(name, options, fn) {
    if (typeof name === 'function' || (typeof name === 'object' && name !== null)) [name, options, fn] = [undefined, name, options];
    if (typeof options === 'function') [options, fn] = [undefined, options];
    const withTimeout = { timeout, ...options };
    return name === undefined ? original(withTimeout, fn) : original(name, withTimeout, fn);
  };
  return Object.assign(wrapped, { skip: original.skip, todo: original.todo, only: original.only });
}

if (timeout > 0) {
  nodeTest.test = withDefaultTimeout(nodeTest.test);
  nodeTest.it = withDefaultTimeout(nodeTest.it);
  syncBuiltinESMExports(); // `import { test } from 'node:test'` in ES modules sees the wrapped one too
}
