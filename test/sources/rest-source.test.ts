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
  server.on(
    'GET',
    MESSAGES,
    (r) => bufferAnswer(buffer, r),
    { body: { result: [], next_key: 0 } },
    (r) => bufferAnswer(buffer, r, { idleMs: 20 }),
  );
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
  assert.ok(
    keys.slice(1).every((k) => k === 4),
    `curr_key after the batch stays at 4: ${keys.join(', ')}`,
  );
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
  assert.deepEqual(
    server
      .requestsTo('GET', MESSAGES)
      .slice(0, 2)
      .map((r) => r.data?.curr_key),
    [0, 6],
  );
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
  const receiver = new Receiver({
    source: new RestSource({ client, channelId: CHANNEL, timeout: 1, delete: true, limitCount: 2 }),
    handlers: [handler],
    retry: fastRetry(),
  });
  await start(t, receiver);
  // Either the receiver stops with the DELETE's error, or (wrongly) it goes on and finishes both batches.
  const outcome = await Promise.race([
    receiver.done.then(
      () => 'stopped without an error',
      (error: unknown) => error,
    ),
    until(receiver, () => receiver.stats().batchesDone >= 2).then(
      () => 'both batches were done',
      () => 'stopped',
    ),
  ]);
  assert.ok(
    outcome instanceof FlespiError && outcome.kind === 'forbidden' && /no access to channel messages deletion/.test(outcome.message),
    `expected the DELETE's error, got: ${String(outcome)}`,
  );
  assert.equal(receiver.stats().batchesDone, 0, 'the batch whose delete failed is not done');
  assert.deepEqual(
    server.requestsTo('DELETE', MESSAGES).map((r) => r.data),
    [{ delete_key: 3 }],
  );
});

test('RestSource checks its options, its state and where a batch came from, naming what is wrong', async (t) => {
  const server = await fake(t);
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  for (const timeout of [0, 31, 1.5, -1]) {
    assert.throws(
      () => new RestSource({ client, channelId: CHANNEL, timeout }),
      new RangeError(`RestSource timeout must be an integer from 1 to 30 seconds, got ${timeout}`),
    );
  }
  assert.equal(new RestSource({ client, channelId: CHANNEL, timeout: 30 }).description, `channel ${CHANNEL} over REST (${server.url})`);
  const source = new RestSource({ client, channelId: CHANNEL, timeout: 1 });
  const signal = new AbortController().signal;
  await assert.rejects(source.next(signal), /RestSource\.next\(\) called before open\(\)/);
  assert.equal(server.requests.length, 0, 'nothing is asked before open()');
  server.on('GET', MESSAGES, (r) => bufferAnswer(numbered(1, 2), r));
  await source.open(undefined);
  const batch = await source.next(signal);
  assert.equal(source.checkpointAfter(batch)?.currKey, 3);
  const stranger = { seq: 1, messages: [] };
  assert.throws(() => source.checkpointAfter(stranger), /batch 1 did not come from this RestSource/);
  await assert.rejects(source.ack(stranger), /batch 1 did not come from this RestSource/);
  await source.close();
  const asked = server.requests.length;
  await assert.rejects(source.next(signal), /called before open\(\)/, 'closed is like never opened');
  assert.equal(server.requests.length, asked, 'nothing is asked after close()');
});

test('messages without a usable next_key: the error says how many, from which channel, and both keys', async (t) => {
  const server = await fake(t);
  server.on('GET', MESSAGES, { body: { result: numbered(1, 2) } }, { body: { result: numbered(1, 3), next_key: 2 } });
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const source = new RestSource({ client, channelId: CHANNEL, timeout: 1, startKey: 2 });
  await source.open(undefined);
  const signal = new AbortController().signal;
  const missing = await source.next(signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(missing instanceof FlespiError && missing.kind === 'malformed', String(missing));
  assert.match(
    missing.message,
    /^flespi returned 2 messages of channel 55 without a usable next_key \(curr_key 2, next_key none\): cannot tell where the next batch starts/,
  );
  const same = await source.next(signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.match(String(same), /flespi returned 3 messages of channel 55 without a usable next_key \(curr_key 2, next_key 2\)/);
});
