import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlespiError, TransientError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { ConfigError } from '../../src/core/options';
import { FileCheckpointStore, MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';
import { HandlerTimeoutError, Receiver, type HandlerErrorEvent, type ReceiverOptions, type SourceErrorEvent } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import type { Sandbox } from '../../src/sandbox/index';
import { CHANNEL, CountingClient, RecordingHandler, fastRetry, nextEvent, numbered, quietSandbox as startQuietSandbox, range, until } from './helpers';

const TIMEOUT = { timeout: 60_000 };

// Whatever a test started is stopped after it, also when an assertion failed or the test timed out
// (a receiver left running retries forever and keeps the test process alive).
const receivers = new Set<Receiver>();
const sandboxes = new Set<Sandbox>();
afterEach(async () => {
  await Promise.all([...receivers].map((r) => r.stop()));
  await Promise.all([...sandboxes].map((s) => s.stop()));
  receivers.clear();
  sandboxes.clear();
});

async function quietSandbox(): Promise<Sandbox> {
  const sandbox = await startQuietSandbox();
  sandboxes.add(sandbox);
  return sandbox;
}

function receiverFor(sandbox: Sandbox, options: Partial<ReceiverOptions> & { limitCount?: number; delete?: boolean; client?: FlespiClient } = {}): Receiver {
  const client = options.client ?? new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
  const source = options.source ?? new RestSource({ client, channelId: CHANNEL, limitCount: options.limitCount ?? 100, timeout: 1, delete: options.delete });
  const receiver = new Receiver({ handlers: [], retry: fastRetry(), ...options, source });
  receivers.add(receiver);
  return receiver;
}

test('basic use: every injected message reaches every handler once, in order, and the checkpoint follows', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 1500));
    const a = new RecordingHandler('a');
    const b = new RecordingHandler('b');
    const checkpoints = new MemoryCheckpointStore();
    const receiver = receiverFor(sandbox, { handlers: [a, b], checkpoints, limitCount: 200 });
    await receiver.start();
    await until(receiver, () => a.accepted.length >= 1500 && b.accepted.length >= 1500);
    // More arrive while it runs: the long-poll picks them up.
    sandbox.inject(CHANNEL, numbered(1501, 10));
    await until(receiver, () => b.accepted.length >= 1510);
    await receiver.stop();
    assert.deepEqual(a.accepted, range(1, 1510));
    assert.deepEqual(b.accepted, range(1, 1510));
    assert.deepEqual(await checkpoints.load().then((c) => c?.currKey), 1511);
    const stats = receiver.stats();
    assert.equal(stats.state, 'stopped');
    assert.equal(stats.messagesDone, 1510);
    assert.equal(stats.handlers[0]!.messages, 1510);
    assert.equal(stats.handlers[0]!.failures, 0);
    assert.ok(a.stopped && b.stopped, 'stop() stops the handlers');
  } finally {
    await sandbox.stop();
  }
});

test('a handler that fails twice on a batch gets it again; the other handler gets it once; nothing is lost', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 50));
    let failuresLeft = 2;
    const flaky = new RecordingHandler('flaky', (messages) => {
      if (messages[0]!['test.seq'] === 21 && failuresLeft > 0) {
        failuresLeft -= 1;
        throw new TransientError('sink unavailable');
      }
    });
    const steady = new RecordingHandler('steady');
    const checkpoints = new MemoryCheckpointStore();
    const receiver = receiverFor(sandbox, { handlers: [flaky, steady], checkpoints, limitCount: 10 });
    const errors: HandlerErrorEvent[] = [];
    receiver.on('handler-error', (e) => errors.push(e));
    await receiver.start();
    await until(receiver, () => flaky.accepted.length >= 50);
    await receiver.stop();

    assert.deepEqual(flaky.accepted, range(1, 50));
    assert.deepEqual(steady.accepted, range(1, 50), 'the handler that succeeded does not get the batch again');
    assert.equal(steady.calls, 5);
    assert.equal(flaky.calls, 7);
    assert.deepEqual(
      errors.map((e) => [e.handler, e.phase, e.seq, e.attempt, e.error.message]),
      [
        ['flaky', 'handle', 3, 1, 'sink unavailable'],
        ['flaky', 'handle', 3, 2, 'sink unavailable'],
      ],
    );
    assert.ok(errors.every((e) => typeof e.retryInMs === 'number' && e.retryInMs >= 0));
    assert.deepEqual(
      flaky.contexts.map((c) => c.attempt),
      [1, 1, 1, 2, 3, 1, 1],
    );
    assert.equal((await checkpoints.load())?.currKey, 51);
    const stats = receiver.stats().handlers.find((h) => h.name === 'flaky')!;
    assert.equal(stats.failures, 2);
    assert.equal(stats.consecutiveFailures, 0);
    assert.equal(stats.lastError, 'sink unavailable');
  } finally {
    await sandbox.stop();
  }
});

test('a handler that never settles is timed out, its signal aborted, and the batch retried', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 5));
    const hanging = new RecordingHandler('hanging', (_m, _ctx, call) => (call === 1 ? new Promise<void>(() => {}) : undefined));
    const receiver = receiverFor(sandbox, { handlers: [hanging], handlerTimeoutMs: 200 });
    const firstError = nextEvent<HandlerErrorEvent>(receiver, 'handler-error');
    await receiver.start();
    await until(receiver, () => hanging.accepted.length >= 5);
    await receiver.stop();
    const error = await firstError;
    assert.ok(error.error instanceof HandlerTimeoutError, `expected a timeout, got ${error.error.name}`);
    assert.match(error.error.message, /hanging: handle\(\) did not finish within 200 ms/);
    assert.equal(error.error.name, 'HandlerTimeoutError', 'logs and the UI show the name');
    assert.equal(hanging.contexts[0]!.signal.aborted, true);
    assert.ok(hanging.contexts[0]!.signal.reason instanceof HandlerTimeoutError);
    assert.deepEqual(hanging.accepted, range(1, 5));
  } finally {
    await sandbox.stop();
  }
});

test('a handler that throws synchronously is caught and retried', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 3));
    const throwing = new RecordingHandler('throwing', (_m, _ctx, call) => {
      if (call === 1) throw new TypeError('sync boom');
    });
    const receiver = receiverFor(sandbox, { handlers: [throwing] });
    const firstError = nextEvent<HandlerErrorEvent>(receiver, 'handler-error');
    await receiver.start();
    await until(receiver, () => throwing.accepted.length >= 3);
    await receiver.stop();
    assert.equal((await firstError).error.message, 'sync boom');
    assert.deepEqual(throwing.accepted, [1, 2, 3]);
  } finally {
    await sandbox.stop();
  }
});

test('a handler whose start() fails is retried before it gets batches; the batch waits for it', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 4));
    const late = new RecordingHandler('late');
    late.start = async () => {
      late.starts += 1;
      if (late.starts < 3) throw new Error(`cannot connect (try ${late.starts})`);
    };
    const other = new RecordingHandler('other');
    const checkpoints = new MemoryCheckpointStore();
    const receiver = receiverFor(sandbox, { handlers: [late, other], checkpoints });
    const errors: HandlerErrorEvent[] = [];
    receiver.on('handler-error', (e) => errors.push(e));
    await receiver.start();
    await until(receiver, () => late.accepted.length >= 4);
    await receiver.stop();
    assert.deepEqual(
      errors.map((e) => [e.handler, e.phase, e.attempt, e.error.message]),
      [
        ['late', 'start', 1, 'cannot connect (try 1)'],
        ['late', 'start', 2, 'cannot connect (try 2)'],
      ],
    );
    assert.deepEqual(late.accepted, [1, 2, 3, 4]);
    assert.deepEqual(other.accepted, [1, 2, 3, 4]);
    assert.equal((await checkpoints.load())?.currKey, 5);
  } finally {
    await sandbox.stop();
  }
});

test('restart resumes from the file checkpoint; a graceful stop never acknowledges the unfinished batch', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  const dir = await mkdtemp(join(tmpdir(), 'receiver-checkpoint-'));
  const file = join(dir, 'nested', 'checkpoint.json');
  try {
    sandbox.inject(CHANNEL, numbered(1, 30));
    // Run 1: batches of 10; the handler hangs on the third batch (21..30) until the receiver aborts it.
    let third: (() => void) | undefined;
    const first = new RecordingHandler('sink', (messages, ctx) => {
      if (messages[0]!['test.seq'] !== 21) return;
      return new Promise<void>((_, reject) => {
        third?.();
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
      });
    });
    const hung = new Promise<void>((resolve) => (third = resolve));
    const run1 = receiverFor(sandbox, { handlers: [first], checkpoints: new FileCheckpointStore(file), limitCount: 10, stopGraceMs: 50 });
    await run1.start();
    await hung;
    await run1.stop();
    assert.deepEqual(first.accepted, range(1, 20));
    assert.equal(JSON.parse(await readFile(file, 'utf8')).currKey, 21, 'the checkpoint stays after the last finished batch');
    assert.equal(first.contexts.at(-1)!.signal.aborted, true, 'the in-flight attempt was aborted after the grace period');

    // Run 2: a new receiver with the same checkpoint file gets the unfinished batch again, then new messages.
    sandbox.inject(CHANNEL, numbered(31, 5));
    const second = new RecordingHandler('sink');
    const run2 = receiverFor(sandbox, { handlers: [second], checkpoints: new FileCheckpointStore(file), limitCount: 10 });
    await run2.start();
    await until(run2, () => second.accepted.length >= 15);
    await run2.stop();
    assert.deepEqual(second.accepted, range(21, 15));
    assert.equal((await new FileCheckpointStore(file).load())?.currKey, 36);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('delete: only acknowledged messages leave the channel buffer, never prefetched ones', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 35));
    const log = sandbox.store.channel(CHANNEL).log;
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = new RecordingHandler('slow', (messages) => (messages[0]!['test.seq'] === 21 ? gate : undefined));
    const client = new CountingClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    const receiver = receiverFor(sandbox, { handlers: [slow], limitCount: 10, delete: true, prefetch: 1, client });
    const fourthFetched = nextEvent(receiver, 'batch', (e: { seq: number }) => e.seq === 4);
    await receiver.start();
    await until(receiver, () => slow.accepted.length >= 20);
    await fourthFetched; // batch 4 (31..35) was fetched ahead while batch 3 (21..30) is being handled
    assert.equal(log.firstKey, 21, 'batches 1 and 2 are deleted');
    assert.equal(log.size, 15, 'batch 3 (unacknowledged) and batch 4 (prefetched) are still there');
    release!();
    await until(receiver, () => slow.accepted.length >= 35);
    await receiver.stop();
    assert.equal(log.size, 0);
    assert.deepEqual(client.deletes, [11, 21, 31, 36]);
    assert.deepEqual(slow.accepted, range(1, 35));
  } finally {
    await sandbox.stop();
  }
});

test('slow handlers slow the receiver down: at most prefetch batches are fetched ahead', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 100));
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const blocked = new RecordingHandler('blocked', () => gate);
    const receiver = receiverFor(sandbox, { handlers: [blocked], limitCount: 10, prefetch: 2 });
    const third = nextEvent(receiver, 'batch', (e: { seq: number }) => e.seq === 3);
    await receiver.start();
    await third;
    await new Promise((resolve) => setTimeout(resolve, 300)); // give an unbounded receiver the chance to fetch more
    assert.equal(receiver.stats().batchesFetched, 3);
    assert.equal(receiver.stats().pending, 3);
    release!();
    await until(receiver, () => blocked.accepted.length >= 100);
    await receiver.stop();
    assert.deepEqual(blocked.accepted, range(1, 100));
  } finally {
    await sandbox.stop();
  }
});

test('long-poll: an empty channel keeps next() polling, and a message ends the wait at once', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    const client = new CountingClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    const source = new RestSource({ client, channelId: CHANNEL, timeout: 1 });
    await source.open(undefined);
    const controller = new AbortController();
    let settled = false;
    const next = source.next(controller.signal).finally(() => (settled = true));
    while (client.emptyPolls < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false, 'empty long-poll answers are not batches');
    sandbox.inject(CHANNEL, numbered(1, 3));
    const batch = await next;
    assert.deepEqual(
      batch.messages.map((m) => m['test.seq']),
      [1, 2, 3],
    );
    const checkpoint = source.checkpointAfter(batch);
    assert.equal(checkpoint.currKey, 4);
    assert.equal(checkpoint.time, batch.messages[2]?.['server.timestamp'], 'the checkpoint also holds the time position');
    assert.ok(
      client.currKeys.every((k) => k === 0),
      'the key does not move on empty answers',
    );

    // Starting from a checkpoint, and aborting a wait.
    const resumed = new RestSource({ client, channelId: CHANNEL, timeout: 1 });
    await resumed.open({ currKey: 3 });
    assert.deepEqual(
      (await resumed.next(controller.signal)).messages.map((m) => m['test.seq']),
      [3],
    );
    const waiting = resumed.next(controller.signal);
    controller.abort();
    await assert.rejects(waiting, (error: Error) => error.name === 'AbortError');
  } finally {
    await sandbox.stop();
  }
});

test('wrong token: the receiver stops with the auth error and says what to fix', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    const client = new FlespiClient({ token: 'x'.repeat(64), baseUrl: sandbox.restUrl });
    const receiver = receiverFor(sandbox, { handlers: [new RecordingHandler('h')], client });
    const sourceErrors: SourceErrorEvent[] = [];
    receiver.on('source-error', (e) => sourceErrors.push(e));
    await receiver.start();
    await assert.rejects(
      receiver.done,
      (error: FlespiError) => error instanceof FlespiError && error.kind === 'auth' && /rejected the token/.test(error.message),
    );
    assert.equal(receiver.state, 'failed');
    assert.deepEqual(
      sourceErrors.map((e) => [e.phase, e.fatal, e.error instanceof FlespiError && e.error.kind]),
      [['fetch', true, 'auth']],
    );
  } finally {
    await sandbox.stop();
  }
});

test(
  'a 403 while running (flespi blocks the account for a while) is waited out with a capped backoff, shown as "blocked by flespi: reason"; a 401 still stops',
  TIMEOUT,
  async () => {
    const sandbox = await quietSandbox();
    try {
      sandbox.inject(CHANNEL, numbered(1, 10));
      const a = new RecordingHandler('a');
      const errors: SourceErrorEvent[] = [];
      const receiver = receiverFor(sandbox, { handlers: [a], blockedRetry: { initialMs: 20, maxMs: 80 } });
      receiver.on('source-error', (e) => errors.push(e));
      await receiver.start();
      await until(receiver, () => a.accepted.length >= 10);
      sandbox.addToken(sandbox.token, { blocked: true });
      for (let waited = 0; errors.length < 3 && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(receiver.state, 'retrying');
      assert.equal(receiver.stats().blocked, 'blocked by flespi: token or customer is blocked');
      assert.ok(
        errors.every((e) => !e.fatal && e.blocked === 'blocked by flespi: token or customer is blocked' && (e.retryInMs ?? Infinity) <= 80),
        'every 403 is retried within the cap',
      );
      sandbox.inject(CHANNEL, numbered(11, 10));
      sandbox.addToken(sandbox.token, { blocked: false });
      await until(receiver, () => a.accepted.length >= 20);
      assert.deepEqual(a.accepted, range(1, 20));
      assert.equal(receiver.stats().blocked, undefined, 'the block is over');
      assert.equal(receiver.state, 'running');

      const wrong = receiverFor(sandbox, { client: new FlespiClient({ token: 'w'.repeat(64), baseUrl: sandbox.restUrl }) });
      await wrong.start();
      await assert.rejects(wrong.done, (e: FlespiError) => e.kind === 'auth');
    } finally {
      await sandbox.stop();
    }
  },
);

test('unknown channel, blocked token (onForbidden "stop") and bad parameters stop the receiver with their own clear errors', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    const missing = receiverFor(sandbox, { source: new RestSource({ client, channelId: 999, timeout: 1 }) });
    await missing.start();
    await assert.rejects(missing.done, (e: FlespiError) => e.kind === 'not-found' && /channel 999 not found/.test(e.message));

    const blockedToken = 'b'.repeat(64);
    sandbox.addToken(blockedToken, { blocked: true });
    const blocked = receiverFor(sandbox, { client: new FlespiClient({ token: blockedToken, baseUrl: sandbox.restUrl }), onForbidden: 'stop' });
    await blocked.start();
    await assert.rejects(blocked.done, (e: FlespiError) => e.kind === 'forbidden' && /blocked/.test(e.message));

    const badLimit = receiverFor(sandbox, { source: new RestSource({ client, channelId: CHANNEL, timeout: 1, limitCount: 0 }) });
    await badLimit.start();
    await assert.rejects(badLimit.done, (e: FlespiError) => e.kind === 'bad-request' && /limit_count/.test(e.message));
  } finally {
    await sandbox.stop();
  }
});

test('429, 5xx, malformed answers, resets and hangs are retried with backoff and nothing is lost or repeated', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 60));
    sandbox.faults.inject('429', 2, { match: '/messages', retryAfter: 0 });
    sandbox.faults.inject('500', 1, { match: '/messages' });
    sandbox.faults.inject('503', 1, { match: '/messages' });
    sandbox.faults.inject('malformed', 1, { match: '/messages' });
    sandbox.faults.inject('reset', 1, { match: '/messages' });
    sandbox.faults.inject('hang', 1, { match: '/messages' });
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl, timeoutMs: 500 });
    const handler = new RecordingHandler('h');
    const receiver = receiverFor(sandbox, { handlers: [handler], client, limitCount: 10 });
    const kinds: string[] = [];
    receiver.on('source-error', (e) => {
      assert.equal(e.fatal, false);
      assert.ok(e.retryInMs !== undefined);
      kinds.push(e.error instanceof FlespiError ? e.error.kind : e.error.name);
    });
    await receiver.start();
    await until(receiver, () => handler.accepted.length >= 60);
    await receiver.stop();
    assert.deepEqual(handler.accepted, range(1, 60));
    assert.deepEqual(kinds, ['rate-limited', 'rate-limited', 'server', 'server', 'malformed', 'network', 'timeout']);
    assert.equal(sandbox.faults.pending.length, 0);
  } finally {
    await sandbox.stop();
  }
});

test('a handler whose start() throws a ConfigError stops the receiver (start() rejects): retrying cannot fix a setting', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 3));
    const misconfigured = new RecordingHandler('mqtt');
    misconfigured.start = async () => {
      misconfigured.starts += 1;
      throw new ConfigError('handler "mqtt" (mqtt): certFile /nowhere/client.crt does not exist');
    };
    const healthy = new RecordingHandler('healthy');
    const receiver = receiverFor(sandbox, { handlers: [misconfigured, healthy] });
    const errors: HandlerErrorEvent[] = [];
    receiver.on('handler-error', (e) => errors.push(e));
    const isTheSetting = (e: Error) => e instanceof ConfigError && /certFile \/nowhere\/client\.crt does not exist/.test(e.message);
    await assert.rejects(receiver.start(), isTheSetting);
    await assert.rejects(receiver.done, isTheSetting);
    assert.equal(receiver.state, 'failed');
    assert.equal(misconfigured.starts, 1);
    assert.deepEqual(
      errors.map((e) => [e.handler, e.phase, e.retryInMs, e.fatal]),
      [['mqtt', 'start', undefined, true]],
    );
    assert.equal(receiver.stats().batchesDone, 0, 'no batch is done without every handler');
    assert.equal(healthy.stopped, true, 'the handlers that started are stopped');
  } finally {
    await sandbox.stop();
  }
});
