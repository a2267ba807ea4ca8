// What a receiver does around stopping and failing: the reasons a handler and a source see when it
// stops, attempts cut short by a stop that are not counted as failures, a stop that comes while the
// source opens, bugs in a source or a store that must stop it visibly, and what each handler-error
// event and dead letter says on the way.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TransientError } from '../../src/core/errors';
import { ConfigError } from '../../src/core/options';
import { MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';
import { MemoryDeadLetterStore } from '../../src/core/receiver/deadLetters';
import { Receiver, type DoneEvent, type HandlerErrorEvent, type ReceiverOptions } from '../../src/core/receiver/receiver';
import type { Checkpoint, SourceBatch } from '../../src/core/sources/source';
import { ListSource } from '../support/listSource';
import { RecordingHandler, fastRetry, numbered, seqs, until } from './helpers';

function receiver(t: TestContext, options: Partial<ReceiverOptions> & Pick<ReceiverOptions, 'source'>): Receiver {
  const r = new Receiver({ handlers: [], retry: fastRetry(), ...options });
  t.after(() => r.stop());
  return r;
}

test('stopping: the source sees "the receiver is stopping", a hanging handler "handler attempt cancelled" after the grace; neither is counted as a handler failure', async (t) => {
  let sourceReason: unknown;
  class Watching extends ListSource {
    override next(signal: AbortSignal): Promise<SourceBatch> {
      signal.addEventListener('abort', () => (sourceReason = signal.reason), { once: true });
      return super.next(signal);
    }
  }
  let handlerSignal: AbortSignal | undefined;
  const handler = new RecordingHandler('hangs', (_messages, ctx) => {
    handlerSignal = ctx.signal;
    return new Promise<void>(() => {}); // ignores its signal
  });
  const r = receiver(t, { source: new Watching([numbered(1, 1)]), handlers: [handler], stopGraceMs: 50 });
  const errors: HandlerErrorEvent[] = [];
  r.on('handler-error', (e) => errors.push(e));
  await r.start();
  while (!handlerSignal) await new Promise((resolve) => setTimeout(resolve, 5));
  await r.stop();
  assert.equal((sourceReason as Error).message, 'the receiver is stopping');
  assert.equal(handlerSignal.aborted, true);
  assert.equal((handlerSignal.reason as Error).message, 'the receiver stopped: handler attempt cancelled');
  assert.deepEqual(errors, [], 'an attempt cut short by stop() is no failure of the handler');
  assert.equal(r.stats().handlers[0]!.failures, 0);
});

test('a handler whose start() hangs: a start timeout names start(), the state is "retrying" until it starts, and a stop during its start is no failure', async (t) => {
  let starts = 0;
  class SlowStart extends RecordingHandler {
    override async start(): Promise<void> {
      starts += 1;
      if (starts === 1) return new Promise<void>(() => {});
      if (starts === 2) throw new TransientError('not yet');
    }
  }
  const handler = new SlowStart('slow');
  const r = receiver(t, { source: new ListSource([numbered(1, 2)]), handlers: [handler], handlerTimeoutMs: 100 });
  const errors: HandlerErrorEvent[] = [];
  const states: string[] = [];
  r.on('handler-error', (e) => errors.push(e));
  r.on('state', (s) => states.push(s));
  await r.start();
  await until(r, () => handler.accepted.length === 2);
  assert.deepEqual(
    errors.map((e) => [e.phase, e.attempt, e.error.message]),
    [
      ['start', 1, 'slow: start() did not finish within 100 ms (handlerTimeoutMs)'],
      ['start', 2, 'not yet'],
    ],
  );
  assert.deepEqual(states.slice(0, 4), ['starting', 'running', 'retrying', 'running'], 'retrying while the handler could not start, running once it did');

  const hanging = new (class extends RecordingHandler {
    override start(): Promise<void> {
      return new Promise<void>(() => {});
    }
  })('never');
  const stopped = receiver(t, { source: new ListSource([]), handlers: [hanging], stopGraceMs: 20 });
  const stopErrors: HandlerErrorEvent[] = [];
  stopped.on('handler-error', (e) => stopErrors.push(e));
  const starting = stopped.start();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await stopped.stop();
  await starting;
  assert.deepEqual(stopErrors, []);
});

test('a stop while the source opens: no handler is started; stop() twice closes the source once', async (t) => {
  let release!: () => void;
  let closes = 0;
  class SlowOpen extends ListSource {
    override open(): Promise<void> {
      return new Promise<void>((resolve) => (release = resolve));
    }
    override async close(): Promise<void> {
      closes += 1;
    }
  }
  let starts = 0;
  class Counting extends RecordingHandler {
    override async start(): Promise<void> {
      starts += 1;
    }
  }
  const r = receiver(t, { source: new SlowOpen([numbered(1, 1)]), handlers: [new Counting('c')] });
  const starting = r.start();
  await new Promise((resolve) => setTimeout(resolve, 10));
  const stopping = [r.stop(), r.stop()];
  release();
  await starting;
  await Promise.all(stopping);
  await r.stop();
  assert.equal(starts, 0, 'stopped before the handlers started');
  assert.equal(closes, 1);
  assert.equal(r.state, 'stopped');
});

test('bugs that must stop the receiver visibly: checkpoints that cannot load, a checkpointAfter that throws, an ack refused for good', async (t) => {
  const broken = receiver(t, {
    source: new ListSource([]),
    checkpoints: new (class extends MemoryCheckpointStore {
      override async load(): Promise<Checkpoint | undefined> {
        throw new Error('corrupt checkpoint');
      }
    })(),
  });
  await assert.rejects(broken.start(), /corrupt checkpoint/);
  assert.equal(broken.state, 'failed');

  class BadPosition extends ListSource {
    override checkpointAfter(): Checkpoint | undefined {
      throw new TypeError('no position');
    }
  }
  const buggy = receiver(t, { source: new BadPosition([numbered(1, 1)]), handlers: [new RecordingHandler('h')] });
  await buggy.start();
  await assert.rejects(buggy.done, /no position/);
  assert.equal(buggy.state, 'failed');

  class Unacked extends ListSource {
    override async ack(): Promise<void> {
      throw new ConfigError('acknowledging is not allowed');
    }
  }
  const refused = receiver(t, { source: new Unacked([numbered(1, 1)]), handlers: [new RecordingHandler('h')] });
  await refused.start();
  await assert.rejects(refused.done, /acknowledging is not allowed/);
  assert.equal(refused.stats().batchesDone, 0, 'the batch was not counted done');
});

test('what events and letters say: latencies, attempts of a letter rejected after a failed attempt, the "stop" policy error, a full store retried with counted attempts', async (t) => {
  let calls = 0;
  const handler = new RecordingHandler('h', (_messages, ctx) => {
    calls += 1;
    if (calls === 1) throw new TransientError('busy');
    if (calls === 2) ctx.reject(1, new Error('bad field'));
  });
  const deadLetters = new MemoryDeadLetterStore();
  const r = receiver(t, { source: new ListSource([numbered(1, 3)]), handlers: [handler], deadLetters });
  const done: DoneEvent[] = [];
  r.on('done', (e) => done.push(e));
  await r.start();
  await until(r, () => done.length === 1);
  const [letter] = await deadLetters.read();
  assert.deepEqual([seqs([letter!.message]), letter!.attempts, letter!.error], [[2], 2, 'bad field']);
  assert.ok(done[0]!.latencyMs >= 0 && done[0]!.latencyMs < 60_000, `latency ${done[0]!.latencyMs}`);
  const stats = r.stats().handlers[0]!;
  assert.ok(stats.lastLatencyMs! >= 0 && stats.lastLatencyMs! < 60_000, `handler latency ${stats.lastLatencyMs}`);
  assert.equal(stats.messages, 2);

  class Strict extends RecordingHandler {
    override readonly onUndeliverable = 'stop' as const;
  }
  const cause = new Error('cannot map');
  const strict = receiver(t, {
    source: new ListSource([numbered(1, 1)]),
    handlers: [
      new Strict('strict', (_m, ctx) => {
        ctx.reject(0, cause);
      }),
    ],
  });
  const fatal: HandlerErrorEvent[] = [];
  strict.on('handler-error', (e) => fatal.push(e));
  await strict.start();
  await assert.rejects(strict.done, (e: unknown) => e instanceof Error && e.cause === cause && /its onUndeliverable policy is "stop"/.test(e.message));
  assert.deepEqual(
    fatal.map((e) => [e.fatal, e.error.cause === cause]),
    [[true, true]],
  );

  const full = receiver(t, {
    source: new ListSource([numbered(1, 1)]),
    handlers: [new RecordingHandler('h', (_m, ctx) => ctx.reject(0, new Error('no')))],
    deadLetters: new MemoryDeadLetterStore(0),
  });
  const attempts: number[] = [];
  full.on('handler-error', (e) => attempts.push(e.attempt));
  await full.start();
  while (attempts.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(attempts.slice(0, 3), [1, 2, 3], 'the full store is retried, each try counted');
  assert.equal(full.stats().batchesDone, 0, 'the batch waits unacknowledged');
});

test('many batches leave no abort listener behind (no MaxListeners warning)', async (t) => {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const handler = new RecordingHandler('h');
  const r = receiver(t, { source: new ListSource(Array.from({ length: 40 }, (_, i) => numbered(i + 1, 1))), handlers: [handler] });
  await r.start();
  await until(r, () => handler.accepted.length === 40);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    warnings.filter((w) => /listener/i.test(w)),
    [],
  );
});
