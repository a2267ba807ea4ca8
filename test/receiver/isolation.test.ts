// The exact path by which a receiver isolates a message that an unclassified error keeps failing on,
// and the failure counts it reports on the way: which parts are tried, in which order, which are moved
// behind the rest of the batch, and the attempts recorded with the dead letter.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { MemoryDeadLetterStore } from '../../src/core/receiver/deadLetters';
import { Receiver, type HandlerErrorEvent, type ReceiverOptions, type SourceErrorEvent } from '../../src/core/receiver/receiver';
import type { Checkpoint } from '../../src/core/sources/source';
import { ListSource } from '../support/listSource';
import { memoryLogger } from '../support/logger';
import { RecordingHandler, fastRetry, numbered, seqs, until } from './helpers';

function receiver(t: TestContext, options: Partial<ReceiverOptions> & Pick<ReceiverOptions, 'source'>): Receiver {
  const r = new Receiver({ handlers: [], retry: fastRetry(), ...options });
  t.after(() => r.stop());
  return r;
}

test('a plain Error on message 3 of 8: retried, halved, the failing half moved behind the other, then halved without another try once the handler proved it works', async (t) => {
  const calls: number[][] = [];
  const handler = new RecordingHandler('sink', (messages) => {
    calls.push(seqs(messages));
    if (seqs(messages).includes(3)) throw new Error('sink choked');
  });
  const deadLetters = new MemoryDeadLetterStore();
  const r = receiver(t, { source: new ListSource([numbered(1, 8)]), handlers: [handler], deadLetters });
  const events: HandlerErrorEvent[] = [];
  const consecutive: number[] = [];
  r.on('handler-error', (e) => {
    events.push(e);
    consecutive.push(r.stats().handlers[0]!.consecutiveFailures);
  });
  await r.start();
  await until(r, () => r.stats().batchesDone === 1);
  assert.deepEqual(calls, [
    [1, 2, 3, 4, 5, 6, 7, 8], // fails: retried (splitAfter 2)
    [1, 2, 3, 4, 5, 6, 7, 8], // fails again: halved, after a backoff
    [1, 2, 3, 4], // fails, not conclusive yet: moved behind the other half
    [5, 6, 7, 8], // accepted: the handler works
    // [1, 2, 3, 4] is not tried again: it is halved at once
    [1, 2],
    [3, 4], // fails: conclusive now, halved without backoff
    [3], // fails: dead-lettered
    [4],
  ]);
  assert.deepEqual(
    events.map((e) => [e.verdict, e.messages]),
    [
      ['retry', 8],
      ['isolating', 8],
      ['isolating', 4],
      ['isolating', 2],
      ['dead-letter', 1],
    ],
  );
  assert.equal(events[2]!.retryInMs, 0, 'moving a part behind the rest waits for nothing');
  assert.equal(events[3]!.retryInMs, 0, 'a conclusive split waits for nothing');
  assert.ok(events[1]!.retryInMs! > 0, 'an inconclusive split backs off first');
  assert.deepEqual(consecutive, [1, 2, 3, 1, 2], 'consecutive failures count up, and start over after an accepted part');
  const letters = await deadLetters.read();
  assert.deepEqual(
    letters.map((l) => [seqs([l.message])[0], l.attempts]),
    [[3, 5]],
    'message 3 was in 5 failed attempts: twice the whole batch, its half, its quarter, itself',
  );
  assert.deepEqual(handler.accepted, [5, 6, 7, 8, 1, 2, 4]);
  assert.equal(r.stats().handlers[0]!.consecutiveFailures, 0);
});

test('onUndeliverable "retry": a message rejected by ctx.reject comes back alone, its attempts counting those of its batch', async (t) => {
  const calls: number[][] = [];
  let refusals = 0;
  class Picky extends RecordingHandler {
    override readonly onUndeliverable = 'retry' as const;
  }
  const handler = new Picky('picky', (messages, ctx) => {
    calls.push(seqs(messages));
    const at = seqs(messages).indexOf(2);
    if (at >= 0 && refusals++ < 2) ctx.reject(at, new Error('not yet'));
  });
  const r = receiver(t, { source: new ListSource([numbered(1, 3)]), handlers: [handler] });
  const events: HandlerErrorEvent[] = [];
  r.on('handler-error', (e) => events.push(e));
  await r.start();
  await until(r, () => r.stats().batchesDone === 1);
  assert.deepEqual(calls, [[1, 2, 3], [2], [2]]);
  assert.deepEqual(
    events.map((e) => [e.verdict, e.messages, e.error.message]),
    [
      ['retry', 1, '1 message(s) rejected: not yet'],
      ['retry', 1, '1 message(s) rejected: not yet'],
    ],
  );
});

test('source errors in a row back off longer each time; a retried open that succeeds clears the trouble; a 403 with onForbidden "stop" stops', async (t) => {
  class Flaky extends ListSource {
    opens = 0;
    fetches = 0;
    override async open(): Promise<void> {
      if (++this.opens === 1) throw new FlespiError('network', 'no route');
    }
    override next(signal: AbortSignal) {
      if (++this.fetches <= 4) return Promise.reject(new FlespiError('server', `down ${this.fetches}`));
      return super.next(signal);
    }
    override checkpointAfter(): Checkpoint | undefined {
      return undefined;
    }
  }
  const source = new Flaky([numbered(1, 1)]);
  const handler = new RecordingHandler('h');
  const r = receiver(t, { source, handlers: [handler], retry: { initialMs: 40, maxMs: 10_000 }, log: memoryLogger() });
  const events: SourceErrorEvent[] = [];
  r.on('source-error', (e) => events.push(e));
  await r.start();
  await until(r, () => handler.accepted.length === 1);
  assert.deepEqual(
    events.map((e) => e.phase),
    ['open', 'fetch', 'fetch', 'fetch', 'fetch'],
  );
  const fetchDelays = events.slice(1).map((e) => e.retryInMs!);
  [20, 40, 80, 160].forEach((low, i) => assert.ok(fetchDelays[i]! >= low && fetchDelays[i]! <= low * 2, `fetch failure ${i + 1}: ${fetchDelays[i]} ms`));
  assert.equal(r.state, 'running', 'the trouble is over');

  class Forbidden extends ListSource {
    override async open(): Promise<void> {
      throw new FlespiError('forbidden', 'blocked', { status: 403 });
    }
  }
  const stopping = receiver(t, { source: new Forbidden([]), handlers: [], onForbidden: 'stop' });
  await assert.rejects(stopping.start(), /blocked/);
  assert.equal(stopping.state, 'failed');
});
