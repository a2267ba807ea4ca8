// The receiver's defaults and the order of its side effects, against the sandbox over real sockets.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { FlespiClient } from '../../src/core/flespi/client';
import { MemoryCheckpointStore, type CheckpointStore } from '../../src/core/receiver/checkpoint';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import type { Checkpoint, Source, SourceBatch } from '../../src/core/sources/source';
import type { Sandbox } from '../../src/sandbox/index';
import { CHANNEL, RecordingHandler, fastRetry, nextEvent, numbered, quietSandbox, range, until } from './helpers';

async function sandboxFor(t: TestContext): Promise<Sandbox> {
  const sandbox = await quietSandbox();
  t.after(() => sandbox.stop());
  return sandbox;
}

/** A real source whose calls are logged; `ackDelayMs` stretches each acknowledgement so an unawaited one shows. */
class LoggingSource implements Source {
  nextCalls = 0;
  constructor(
    private readonly inner: Source,
    private readonly log: string[] = [],
    private readonly ackDelayMs = 0,
  ) {}
  get description(): string {
    return this.inner.description;
  }
  open(checkpoint: Checkpoint | undefined): Promise<void> {
    return this.inner.open(checkpoint);
  }
  next(signal: AbortSignal): Promise<SourceBatch> {
    this.nextCalls += 1;
    return this.inner.next(signal);
  }
  checkpointAfter(batch: SourceBatch): Checkpoint | undefined {
    return this.inner.checkpointAfter(batch);
  }
  async ack(batch: SourceBatch): Promise<void> {
    this.log.push(`ack ${batch.seq} begins`);
    if (this.ackDelayMs) await sleep(this.ackDelayMs);
    await this.inner.ack(batch);
    this.log.push(`ack ${batch.seq} ends`);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A checkpoint store whose saves are logged and slow; `failOnce` keys fail their first save. */
class LoggingStore implements CheckpointStore {
  readonly inner = new MemoryCheckpointStore();
  constructor(
    private readonly log: string[],
    private readonly delayMs: number,
    private readonly failOnce = new Set<number>(),
  ) {}
  load(): Promise<Checkpoint | undefined> {
    return this.inner.load();
  }
  async save(checkpoint: Checkpoint): Promise<void> {
    this.log.push(`save ${checkpoint.currKey} begins`);
    await sleep(this.delayMs);
    if (this.failOnce.delete(checkpoint.currKey)) {
      this.log.push(`save ${checkpoint.currKey} fails`);
      throw new Error('disk full');
    }
    await this.inner.save(checkpoint);
    this.log.push(`save ${checkpoint.currKey} ends`);
  }
}

test('by default (prefetch 1) a blocked handler holds the receiver at two fetched batches', async (t) => {
  const sandbox = await sandboxFor(t);
  sandbox.inject(CHANNEL, numbered(1, 100));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const blocked = new RecordingHandler('blocked', () => gate);
  const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
  const source = new LoggingSource(new RestSource({ client, channelId: CHANNEL, limitCount: 10, timeout: 1 }));
  const receiver = new Receiver({ source, handlers: [blocked], retry: fastRetry() }); // no prefetch given: the default
  t.after(() => receiver.stop());
  const second = nextEvent(receiver, 'batch', (e: { seq: number }) => e.seq === 2);
  await receiver.start();
  await second;
  while (blocked.calls === 0) await tick();
  await tick();
  await tick();
  assert.equal(source.nextCalls, 2, 'the source is not asked for a third batch while the first is being handled');
  assert.equal(receiver.stats().batchesFetched, 2);
  assert.equal(receiver.stats().pending, 2);
  release();
  await until(receiver, () => blocked.accepted.length >= 100);
  await receiver.stop();
  assert.deepEqual(blocked.accepted, range(1, 100));
  assert.ok(source.nextCalls <= 11, `at most one next() beyond the ten batches, got ${source.nextCalls}`);
});

test('checkpoint saves and acknowledgements happen in batch order: handle, save, ack, then the next batch', async (t) => {
  const sandbox = await sandboxFor(t);
  sandbox.inject(CHANNEL, numbered(1, 50));
  const log: string[] = [];
  const handler = new RecordingHandler('h', (messages) => void log.push(`handle ${messages[0]!['test.seq'] as number}`));
  const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
  const source = new LoggingSource(new RestSource({ client, channelId: CHANNEL, limitCount: 10, timeout: 1, delete: true }), log, 5);
  const store = new LoggingStore(log, 5, new Set([31])); // the third batch's save fails once and is retried
  const done: number[] = [];
  const saved: number[] = [];
  const receiver = new Receiver({ source, handlers: [handler], checkpoints: store, prefetch: 2, retry: fastRetry() });
  t.after(() => receiver.stop());
  receiver.on('done', (e) => done.push(e.seq));
  receiver.on('checkpoint', (c) => saved.push(c.currKey));
  await receiver.start();
  await until(receiver, () => done.length >= 5);
  await receiver.stop();

  const expected = [1, 2, 3, 4, 5].flatMap((seq) => {
    const key = seq * 10 + 1;
    const save = seq === 3 ? [`save ${key} begins`, `save ${key} fails`, `save ${key} begins`, `save ${key} ends`] : [`save ${key} begins`, `save ${key} ends`];
    return [`handle ${key - 10}`, ...save, `ack ${seq} begins`, `ack ${seq} ends`];
  });
  assert.deepEqual(log, expected);
  assert.deepEqual(done, [1, 2, 3, 4, 5]);
  assert.deepEqual(saved, [11, 21, 31, 41, 51]);
  assert.equal((await store.inner.load())?.currKey, 51);
  assert.equal(sandbox.store.channel(CHANNEL).log.size, 0, 'every acknowledged batch was deleted');
});
