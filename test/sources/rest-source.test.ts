// The REST source inside a Receiver, against a scripted fake flespi that answers what the sandbox never does.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { bufferAnswer, startFakeFlespi, type FakeFlespi } from '../support/fakeFlespi';
import { RecordingHandler, fastRetry, numbered, until } from '../receiver/helpers';

const CHANNEL = 55;
const MESSAGES = `/gw/channels/${CHANNEL}/messages`;

async function fake(t: TestContext): Promise<FakeFlespi> {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  return server;
}

function start(t: TestContext, receiver: Receiver): Promise<void> {
  t.after(() => receiver.stop());
  return receiver.start();
}

test('an empty poll answered with a next_key below curr_key (0) does not move the key back: nothing is read twice', async (t) => {
  const server = await fake(t);
  const buffer = numbered(1, 3);
  // First poll: the three messages; second: empty with next_key 0; then the buffer as flespi would answer it.
  server.on('GET', MESSAGES, (r) => bufferAnswer(buffer, r), { body: { result: [], next_key: 0 } }, (r) => bufferAnswer(buffer, r, { idleMs: 20 }));
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const handler = new RecordingHandler('h');
  const checkpoints = new MemoryCheckpointStore();
  const receiver = new Receiver({ source: new RestSource({ client, channelId: CHANNEL, timeout: 1 }), handlers: [handler], checkpoints, retry: fastRetry() });
  await start(t, receiver);
  await until(receiver, () => handler.accepted.length >= 3);
  // Let it poll a few more times after the hostile answer; a key moved back to 0 reads 1..3 again.
  while (server.requestsTo('GET', MESSAGES).length < 6) await new Promise((resolve) => setTimeout(resolve, 10));
  await receiver.stop();
  assert.deepEqual(handler.accepted, [1, 2, 3]);
  const keys = server.requestsTo('GET', MESSAGES).map((r) => r.data?.curr_key);
  assert.deepEqual(keys.slice(0, 3), [0, 4, 4]);
  assert.ok(keys.slice(1).every((k) => k === 4), `curr_key after the batch stays at 4: ${keys.join(', ')}`);
  assert.equal((await checkpoints.load())?.currKey, 4);
  assert.equal(receiver.stats().batchesFetched, 1);
});

test('an empty poll with a next_key ahead of curr_key moves the key forward (messages deleted meanwhile)', async (t) => {
  const server = await fake(t);
  const buffer = numbered(1, 8);
  // Keys 1..5 were deleted by someone else: the empty answer to curr_key 0 says to go on from 6.
  server.on('GET', MESSAGES, { body: { result: [], next_key: 6 } }, (r) => bufferAnswer(buffer, r));
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const handler = new RecordingHandler('h');
  const receiver = new Receiver({ source: new RestSource({ client, channelId: CHANNEL, timeout: 1 }), handlers: [handler], retry: fastRetry() });
  await start(t, receiver);
  await until(receiver, () => handler.accepted.length >= 3);
  await receiver.stop();
  assert.deepEqual(handler.accepted, [6, 7, 8]);
  assert.deepEqual(server.requestsTo('GET', MESSAGES).slice(0, 2).map((r) => r.data?.curr_key), [0, 6]);
});

test('messages without a usable next_key are refused as malformed (retried), not re-read forever', async (t) => {
  const server = await fake(t);
  server.on('GET', MESSAGES, { body: { result: numbered(1, 2), next_key: 0 } }, { body: { result: numbered(1, 2) } }, (r) => bufferAnswer(numbered(1, 2), r));
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const handler = new RecordingHandler('h');
  const receiver = new Receiver({ source: new RestSource({ client, channelId: CHANNEL, timeout: 1 }), handlers: [handler], retry: fastRetry() });
  const errors: string[] = [];
  receiver.on('source-error', (e) => errors.push(e.error instanceof FlespiError ? `${e.error.kind} ${e.fatal}` : e.error.message));
  await start(t, receiver);
  await until(receiver, () => handler.accepted.length >= 2);
  await receiver.stop();
  assert.deepEqual(handler.accepted, [1, 2]);
  assert.deepEqual(errors, ['malformed false', 'malformed false']);
});

test('delete: a DELETE answered 200 with `errors` stops the receiver with that error instead of passing as deleted', async (t) => {
  const server = await fake(t);
  const buffer = numbered(1, 4);
  server.on('GET', MESSAGES, (r) => bufferAnswer(buffer, r, { limit: 2 }));
  server.on('DELETE', MESSAGES, { body: { result: [], errors: [{ code: 3, reason: 'no access to channel messages deletion' }] } });
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const handler = new RecordingHandler('h');
  const receiver = new Receiver({ source: new RestSource({ client, channelId: CHANNEL, timeout: 1, delete: true, limitCount: 2 }), handlers: [handler], retry: fastRetry() });
  await start(t, receiver);
  // Either the receiver stops with the DELETE's error, or (wrongly) it goes on and finishes both batches.
  const outcome = await Promise.race([
    receiver.done.then(() => 'stopped without an error', (error: unknown) => error),
    until(receiver, () => receiver.stats().batchesDone >= 2).then(() => 'both batches were done', () => 'stopped'),
  ]);
  assert.ok(outcome instanceof FlespiError && outcome.kind === 'forbidden' && /no access to channel messages deletion/.test(outcome.message), `expected the DELETE's error, got: ${String(outcome)}`);
  assert.equal(receiver.stats().batchesDone, 0, 'the batch whose delete failed is not done');
  assert.deepEqual(server.requestsTo('DELETE', MESSAGES).map((r) => r.data), [{ delete_key: 3 }]);
});
