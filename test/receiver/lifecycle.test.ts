// The Receiver's limits and its stop: how far it fetches ahead, how long a stop waits for an attempt
// in flight, what it stops and closes, and the state a recovered checkpoint save leaves it in.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { UndeliverableError } from '../../src/core/errors';
import { MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';
import { MemoryDeadLetterStore } from '../../src/core/receiver/deadLetters';
import { Receiver, type HandlerErrorEvent, type ReceiverOptions } from '../../src/core/receiver/receiver';
import type { Checkpoint } from '../../src/core/sources/source';
import { ListSource } from '../support/listSource';
import { RecordingHandler, fastRetry, numbered, until } from './helpers';

function receiver(t: TestContext, options: Partial<ReceiverOptions> & Pick<ReceiverOptions, 'source'>): Receiver {
  const r = new Receiver({ handlers: [], retry: fastRetry(), ...options });
  t.after(() => r.stop());
  return r;
}

/** A handler that holds every batch until `release()`. */
function held(name = 'h') {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return { handler: new RecordingHandler(name, () => gate), release: () => release() };
}

const settle = (ms = 100) => new Promise((resolve) => setTimeout(resolve, ms));

test('prefetch 0 (or below) fetches the next batch only once the last is done; prefetch 2 holds three', async (t) => {
  for (const [prefetch, expected] of [
    [0, 1],
    [-2, 1],
    [2, 3],
  ] as const) {
    const { handler, release } = held();
    const r = receiver(t, {
      source: new ListSource([numbered(1, 1), numbered(2, 1), numbered(3, 1), numbered(4, 1), numbered(5, 1)]),
      handlers: [handler],
      prefetch,
    });
    await r.start();
    await settle();
    assert.equal(r.stats().batchesFetched, expected, `prefetch ${prefetch}`);
    assert.equal(r.stats().pending, expected);
    release();
    await until(r, () => handler.accepted.length >= 5);
    await r.stop();
    assert.equal(r.stats().pending, 0);
  }
});

test('stop waits for an attempt in flight (5 s by default) and commits its batch; prefetched batches are dropped, unacknowledged', async (t) => {
  const saved: Checkpoint[] = [];
  class Counting extends ListSource {
    acked = 0;
    override checkpointAfter(): Checkpoint {
      return { currKey: this.acked + 1 };
    }
    override async ack(): Promise<void> {
      this.acked += 1;
    }
  }
  const source = new Counting([numbered(1, 1), numbered(2, 1), numbered(3, 1)]);
  const handler = new RecordingHandler('slow', () => new Promise((resolve) => setTimeout(resolve, 400)));
  const checkpoints = new MemoryCheckpointStore();
  const r = receiver(t, { source, handlers: [handler], checkpoints });
  r.on('checkpoint', (c) => saved.push(c));
  await r.start();
  while (handler.calls < 1 || r.stats().pending < 2) await settle(10);
  await r.stop();
  assert.deepEqual(handler.accepted, [1], 'the attempt in flight finished');
  assert.equal(source.acked, 1);
  assert.deepEqual(
    saved.map((c) => c.currKey),
    [1],
  );
  assert.equal(r.stats().batchesDone, 1);
  assert.equal(r.stats().pending, 0, 'prefetched batches dropped');
  assert.equal(r.stats().state, 'stopped');
  assert.equal((await checkpoints.load())?.currKey, 1);
});

test('stop: a handler that never started is not stopped; a receiver never started does not close its source', async (t) => {
  class Closing extends ListSource {
    closed = 0;
    override async close(): Promise<void> {
      this.closed += 1;
    }
  }
  class NeverStarts extends RecordingHandler {
    override async start(): Promise<void> {
      throw new Error('sink down');
    }
  }
  const down = new NeverStarts('down');
  const up = new RecordingHandler('up');
  const source = new Closing([numbered(1, 1)]);
  const r = receiver(t, { source, handlers: [down, up] });
  await r.start();
  await settle(50);
  await r.stop();
  assert.equal(down.stopped, false, 'a handler that never started gets no stop()');
  assert.equal(up.stopped, true);
  assert.equal(source.closed, 1);

  const idle = new Closing([]);
  const never = receiver(t, { source: idle, handlers: [new RecordingHandler('h')] });
  await never.stop();
  assert.equal(idle.closed, 0);
  assert.equal(never.state, 'stopped');
  await never.done;
});

test('a checkpoint save that fails once is retried, and the receiver is "running" again afterwards', async (t) => {
  class Flaky extends MemoryCheckpointStore {
    failures = 0;
    override async save(checkpoint: Checkpoint): Promise<void> {
      if (this.failures++ === 0) throw new Error('disk full for a moment');
      await super.save(checkpoint);
    }
  }
  class Positioned extends ListSource {
    override checkpointAfter(): Checkpoint {
      return { currKey: 2 };
    }
  }
  const checkpoints = new Flaky();
  const states: string[] = [];
  const r = receiver(t, { source: new Positioned([numbered(1, 1)]), handlers: [new RecordingHandler('h')], checkpoints });
  r.on('state', (s) => states.push(s));
  await r.start();
  await until(r, () => r.stats().batchesDone >= 1);
  assert.deepEqual(states, ['starting', 'running', 'retrying', 'running']);
  assert.equal(r.stats().lastSourceError, 'disk full for a moment');
  assert.equal((await checkpoints.load())?.currKey, 2);
});

test('splitAfter is a whole number of attempts (2.7 is 2), at least 1; conclusive splits and the dead letter are announced with no wait', async (t) => {
  for (const [splitAfter, wholeTries] of [
    [2.7, 2],
    [0, 1],
  ] as const) {
    const whole: number[] = [];
    const handler = new RecordingHandler('h', (messages) => {
      if (messages.length === 4) whole.push(4);
      if (messages.some((m) => m['test.seq'] === 3)) throw new Error('cannot take it');
    });
    const r = receiver(t, { source: new ListSource([numbered(1, 4)]), handlers: [handler], splitAfter });
    await r.start();
    await until(r, () => r.stats().batchesDone >= 1);
    assert.equal(whole.length, wholeTries, `splitAfter ${splitAfter}`);
    assert.deepEqual([...handler.accepted].sort(), [1, 2, 4]);
  }

  const errors: HandlerErrorEvent[] = [];
  const handler = new RecordingHandler('h', (messages) => {
    if (messages.some((m) => m['test.seq'] === 2)) throw new UndeliverableError('refused');
  });
  const r = receiver(t, { source: new ListSource([numbered(1, 4)]), handlers: [handler] });
  r.on('handler-error', (e) => errors.push(e));
  await r.start();
  await until(r, () => r.stats().batchesDone >= 1);
  assert.deepEqual(
    errors.map((e) => [e.verdict, e.messages, e.retryInMs]),
    [
      ['isolating', 4, 0],
      ['isolating', 2, 0],
      ['dead-letter', 1, 0],
    ],
  );
  assert.deepEqual(
    errors.map((e) => e.attempt),
    [1, 2, 4],
  );
});

test('an engine error (TypeError, RangeError, SyntaxError, ReferenceError, URIError) on a message alone is dead-lettered after splitAfter tries; a plain Error on it is retried, not dead-lettered', async (t) => {
  const engine = [TypeError, RangeError, SyntaxError, ReferenceError, URIError];
  for (const Kind of engine) {
    const handler = new RecordingHandler('h', () => {
      throw new Kind('cannot read this message');
    });
    const deadLetters = new MemoryDeadLetterStore();
    const r = receiver(t, { source: new ListSource([numbered(1, 1)]), handlers: [handler], deadLetters });
    await r.start();
    // Dead-lettered after two tries, or (wrongly) retried on and on.
    while (r.stats().batchesDone < 1 && handler.calls < 6) await settle(10);
    const letters = await deadLetters.read();
    assert.deepEqual(
      letters.map((l) => [l.errorName, l.attempts]),
      [[Kind.name, 2]],
      Kind.name,
    );
    assert.equal(handler.calls, 2, Kind.name);
    await r.stop();
  }
  const plain = new RecordingHandler('h', () => {
    throw new Error('sink down');
  });
  const deadLetters = new MemoryDeadLetterStore();
  const r = receiver(t, { source: new ListSource([numbered(1, 1)]), handlers: [plain], deadLetters });
  await r.start();
  while (plain.calls < 6) await settle(10);
  await r.stop();
  assert.equal((await deadLetters.read()).length, 0);
  assert.equal(r.stats().batchesDone, 0);
});
