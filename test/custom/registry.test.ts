// Building handlers from configuration entries (src/core/handlers/registry.ts): custom classes from
// files, names, policies and the errors a wrong entry gets, each in full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HandlerLoadError } from '../../src/core/custom/loader';
import { Handler } from '../../src/core/handler';
import { createHandler, createHandlers } from '../../src/core/handlers/registry';
import type { HandlerEnv } from '../../src/core/handlers/spec';
import { ConfigError, type Options } from '../../src/core/options';

const SOURCES: Record<string, string> = {
  // Keeps what its constructor got, to see the options arrive as written.
  'Keeper.ts': `import { Handler } from 'flespi-receiver';
export default class Keeper extends Handler {
  constructor(readonly got: Record<string, unknown>) { super(); }
  async handle(): Promise<void> {}
}
`,
  // No constructor of its own: Handler's name parameter receives the options object.
  'Plain.ts': `import { Handler } from 'flespi-receiver';
export default class Plain extends Handler {
  async handle(): Promise<void> {}
}
`,
  // Names itself: that name is kept when the entry has none.
  'Named.ts': `import { Handler } from 'flespi-receiver';
export default class Named extends Handler {
  constructor() { super('relay'); }
  async handle(): Promise<void> {}
}
`,
  'Anonymous.ts': `import { Handler } from 'flespi-receiver';
const make = () => class extends Handler { async handle(): Promise<void> {} };
export default make();
`,
  'Boom.ts': `import { Handler } from 'flespi-receiver';
export default class Boom extends Handler {
  constructor() { super(); throw new Error('no broker configured'); }
  async handle(): Promise<void> {}
}
`,
  'AnonymousBoom.ts': `import { Handler } from 'flespi-receiver';
const make = () => class extends Handler { constructor() { super(); throw 'plain text'; } async handle(): Promise<void> {} };
export default make();
`,
};

async function withHandlers(run: (env: HandlerEnv, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-registry-'));
  try {
    for (const [file, source] of Object.entries(SOURCES)) await writeFile(join(dir, file), source);
    await run({ resolvePath: (p) => join(dir, p) }, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function refusal(entry: Options, env: HandlerEnv, where = 'cfg.json: handlers[2]'): Promise<Error> {
  try {
    await createHandler(entry, env, where);
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(entry)}`);
}

test('custom: options reach the constructor as written (none is {}); the entry name wins, else the one the handler gives itself, else the class name, else "custom"', async () => {
  await withHandlers(async (env) => {
    const keeper = (await createHandler({ type: 'custom', file: 'Keeper.ts', options: { url: 'x', n: 2 } }, env, 'h')) as Handler & { got: unknown };
    assert.deepEqual(keeper.got, { url: 'x', n: 2 });
    assert.equal(keeper.name, 'Keeper');
    const bare = (await createHandler({ type: 'custom', file: 'Keeper.ts' }, env, 'h')) as Handler & { got: unknown };
    assert.deepEqual(bare.got, {});
    assert.equal((await createHandler({ type: 'custom', name: 'mine', file: 'Keeper.ts' }, env, 'h')).name, 'mine');
    assert.equal((await createHandler({ type: 'custom', file: 'Plain.ts', options: { a: 1 } }, env, 'h')).name, 'Plain');
    assert.equal((await createHandler({ type: 'custom', file: 'Named.ts' }, env, 'h')).name, 'relay');
    assert.equal((await createHandler({ type: 'custom', file: 'Anonymous.ts', options: { a: 1 } }, env, 'h')).name, 'custom');
  });
});

test('custom: options that are not an object, unknown keys, a missing file and a failing constructor are named in full', async () => {
  await withHandlers(async (env, dir) => {
    for (const options of [[], null, 'url=x', 3]) {
      const error = await refusal({ type: 'custom', file: 'Keeper.ts', options } as Options, env);
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, `cfg.json: handlers[2] (custom): "options" must be an object of settings for your handler's constructor`);
    }
    // Every key an entry may have is accepted; another one is refused.
    const policy = await createHandler({ type: 'custom', name: 'n', file: 'Keeper.ts', options: {}, onUndeliverable: 'stop' }, env, 'h');
    assert.equal(policy.onUndeliverable, 'stop');
    assert.match((await refusal({ type: 'custom', file: 'Keeper.ts', url: 'x' }, env)).message, /^cfg\.json: handlers\[2\] \(custom\): unknown setting "url"/);

    const missing = await refusal({ type: 'custom', file: 'Nowhere.ts' }, env);
    assert.ok(missing instanceof HandlerLoadError);
    assert.match(missing.message, /^cfg\.json: handlers\[2\] \(custom\): /);
    assert.equal(missing.file, join(dir, 'Nowhere.ts'));

    const boom = await refusal({ type: 'custom', file: 'Boom.ts' }, env);
    assert.ok(boom instanceof ConfigError);
    assert.equal(boom.message, 'cfg.json: handlers[2] (custom): the constructor of Boom in Boom.ts failed: no broker configured');
    const anonymous = await refusal({ type: 'custom', file: 'AnonymousBoom.ts' }, env);
    assert.equal(anonymous.message, 'cfg.json: handlers[2] (custom): the constructor of the handler class in AnonymousBoom.ts failed: plain text');
  });
});

test('built-in types: the policy is read, settings errors are prefixed with the entry once, names must be unique', async () => {
  await withHandlers(async (env) => {
    assert.equal((await createHandler({ type: 'stdout', onUndeliverable: 'retry' }, env, 'h')).onUndeliverable, 'retry');
    assert.equal((await createHandler({ type: 'stdout' }, env, 'h')).onUndeliverable, 'dead-letter');
    // The spec names the handler itself ('handler "stdout" (stdout)'); the entry's place goes in front, once.
    const bad = await refusal({ type: 'stdout', pretty: 'yes' }, env, 'cfg.json: handlers[0]');
    assert.ok(bad instanceof ConfigError);
    assert.match(bad.message, /^cfg\.json: handlers\[0\]: handler "stdout" \(stdout\): "pretty" must be/);
    const unknown = await refusal({ type: 'stdout', url: 'x' }, env, 'cfg.json: handlers[0]');
    assert.equal(unknown.message.indexOf('cfg.json: handlers[0]'), unknown.message.lastIndexOf('cfg.json: handlers[0]'));

    const twice = await createHandlers([{ type: 'stdout' }, { type: 'stdout', name: 'second' }], env);
    assert.deepEqual(
      twice.map((h) => h.name),
      ['stdout', 'second'],
    );
    await assert.rejects(createHandlers([{ type: 'stdout' }, { type: 'stdout' }], env), {
      message: 'handlers[1]: another handler (handlers[0]) is named "stdout" too: give one of them a different "name"',
    });
  });
});
