import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseConfig } from '../../src/core/config';
import { createHandler } from '../../src/core/handlers/registry';
import { ConfigError } from '../../src/core/options';

const FILE = join('/work', 'cfg', 'receiver.json');

test('the dead-letter file defaults to one beside the checkpoint, and may be named with its bound', () => {
  const plain = parseConfig({ channel: 7, handlers: [{ type: 'stdout' }] }, FILE);
  assert.equal(plain.deadLetters.file, join('/work', 'cfg', 'receiver.channel-7.dead-letters.ndjson'));
  assert.equal(plain.deadLetters.maxBytes, 64 * 1024 * 1024);
  const named = parseConfig(
    { channel: 7, handlers: [{ type: 'stdout' }], deadLetters: { file: 'state/dl.ndjson', maxBytes: 2048 }, receiver: { splitAfter: 3 } },
    FILE,
  );
  assert.deepEqual(named.deadLetters, { file: join('/work', 'cfg', 'state', 'dl.ndjson'), maxBytes: 2048 });
  assert.equal(named.receiver.splitAfter, 3);
  assert.throws(
    () => parseConfig({ channel: 7, handlers: [{ type: 'stdout' }], deadLetters: { maxBytes: 10 } }, FILE),
    (e: Error) => e instanceof ConfigError && /deadLetters.*maxBytes/.test(e.message),
  );
  assert.throws(() => parseConfig({ channel: 7, handlers: [{ type: 'stdout' }], deadLetters: { path: 'x' } }, FILE), ConfigError);
});

test('a handler entry sets its onUndeliverable policy; a wrong value names the choices', async () => {
  const env = { resolvePath: (p: string) => p };
  assert.equal((await createHandler({ type: 'stdout' }, env, 'handlers[0]')).onUndeliverable, 'dead-letter');
  assert.equal((await createHandler({ type: 'stdout', onUndeliverable: 'stop' }, env, 'handlers[0]')).onUndeliverable, 'stop');
  await assert.rejects(createHandler({ type: 'stdout', onUndeliverable: 'drop' }, env, 'handlers[0]'), /onUndeliverable.*"dead-letter", "stop", "retry"/);
});
