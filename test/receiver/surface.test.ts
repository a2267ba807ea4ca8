// What the Receiver reports about itself: its construction checks, stats, events, states, the log
// lines of a listener, handler or source failing, ctx.reject's checks, the dead-letter record, and
// how a source error's backoff, Retry-After and a flespi block (403) are reported.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError, TransientError } from '../../src/core/errors';
import { ConfigError } from '../../src/core/options';
import { FlespiClient } from '../../src/core/flespi/client';
import type { HandlerHealth } from '../../src/core/handler';
import { MemoryDeadLetterStore } from '../../src/core/receiver/deadLetters';
import {
  Receiver,
  type BatchEvent,
  type DeadLetterEvent,
  type DoneEvent,
  type HandlerErrorEvent,
  type ReceiverOptions,
  type ReceiverState,
  type SourceErrorEvent,
} from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { bufferAnswer, startFakeFlespi } from '../support/fakeFlespi';
import { ListSource } from '../support/listSource';
import { memoryLogger } from '../support/logger';
import { RecordingHandler, fastRetry, numbered, until, type Behaviour } from './helpers';

function receiver(t: TestContext, options: Partial<ReceiverOptions> & Pick<ReceiverOptions, 'source'>): Receiver {
  const r = new Receiver({ handlers: [], retry: fastRetry(), ...options });
  t.after(() => r.stop());
  return r;
}

class HealthyHandler extends RecordingHandler {
  constructor(
    name: string,
    behaviour: Behaviour | undefined,
    private readonly report: () => HandlerHealth,
  ) {
    super(name, behaviour);
  }
  override health(): HandlerHealth {
    return this.report();
  }
}

test('a Receiver is started once, and two handlers with one name are refused, naming it', async (t) => {
  assert.throws(
    () => new Receiver({ source: new ListSource([]), handlers: [new RecordingHandler('a'), new RecordingHandler('b'), new RecordingHandler('a')] }),
    (e: unknown) => e instanceof ConfigError && e.message === 'two handlers are named "a": give each a different "name"',
  );
  const r = receiver(t, { source: new ListSource([]), handlers: [new RecordingHandler('a'), new RecordingHandler('b')] });
  await r.start();
  await assert.rejects(r.start(), { message: 'a Receiver can only be started once; create a new one' });
});

test('stats and events: counts of fetched and done batches, states in order, handler counters, latency average and health', async (t) => {
  let calls = 0;
  const handler = new HealthyHandler(
    'h',
    async () => {
      calls += 1;
      if (calls === 2 || calls === 3) throw new TransientError('flaky');
      if (calls === 4) await new Promise((resolve) => setTimeout(resolve, 120));
    },
    () => {
      if (calls >= 3) throw new Error('no health today');
      return { detail: `calls ${calls}` };
    },
  );
  const source = new ListSource([numbered(1, 2), numbered(3, 3)], 'two lists');
  const r = receiver(t, { source, handlers: [handler] });
  const states: ReceiverState[] = [];
  const batches: BatchEvent[] = [];
  const dones: DoneEvent[] = [];
  const latencies: number[] = [];
  r.on('state', (s) => states.push(s));
  r.on('batch', (e) => batches.push(e));
  r.on('done', (e) => {
    dones.push(e);
    latencies.push(r.stats().handlers[0]!.lastLatencyMs!);
  });
  const before = r.stats();
  assert.equal(before.state, 'stopped');
  assert.equal(before.handlers[0]!.health.detail, 'calls 0');
  assert.equal(before.handlers[0]!.started, false);
  await r.start();
  await until(r, () => r.stats().batchesDone >= 2);
  const stats = r.stats();
  assert.equal(stats.source, 'two lists');
  assert.equal(stats.deadLetterStore, 'memory');
  assert.deepEqual([stats.batchesFetched, stats.messagesFetched, stats.batchesDone, stats.messagesDone, stats.pending], [2, 5, 2, 5, 0]);
  assert.equal(stats.state, 'running');
  const h = stats.handlers[0]!;
  assert.deepEqual(
    {
      name: h.name,
      started: h.started,
      messages: h.messages,
      batches: h.batches,
      failures: h.failures,
      consecutive: h.consecutiveFailures,
      lastError: h.lastError,
      dead: h.deadLetters,
    },
    { name: 'h', started: true, messages: 5, batches: 2, failures: 2, consecutive: 0, lastError: 'flaky', dead: 0 },
  );
  assert.equal(h.health.detail, 'health() failed: no health today');
  assert.ok(latencies[1]! >= 100, `the slow attempt took ${latencies[1]} ms`);
  assert.ok(Math.abs(h.avgLatencyMs! - (latencies[0]! * 0.8 + latencies[1]! * 0.2)) < 1e-9, `average ${h.avgLatencyMs} of ${latencies.join(', ')}`);
  assert.equal(h.lastLatencyMs, latencies[1]);
  assert.deepEqual(
    batches.map((b) => [b.seq, b.messages]),
    [
      [1, 2],
      [2, 3],
    ],
  );
  assert.ok(
    batches.every((b) => b.pending >= 1),
    JSON.stringify(batches),
  );
  assert.deepEqual(
    dones.map((d) => [d.seq, d.messages, d.checkpoint]),
    [
      [1, 2, undefined],
      [2, 3, undefined],
    ],
  );
  assert.ok(dones[1]!.latencyMs >= 100, `batch 2 took ${dones[1]!.latencyMs} ms from arrival to done`);
  await r.stop();
  assert.deepEqual(states, ['starting', 'running', 'retrying', 'running', 'stopping', 'stopped']);
  assert.equal(r.state, 'stopped');
  assert.equal(r.stats().state, 'stopped');
});

test('a listener that throws, a handler whose stop() fails and a source whose close() fails are logged; the receiver goes on and stops', async (t) => {
  class BadClose extends ListSource {
    override async close(): Promise<void> {
      throw new Error('socket already gone');
    }
  }
  class BadStop extends RecordingHandler {
    override async stop(): Promise<void> {
      throw new Error('cannot flush');
    }
  }
  const log = memoryLogger();
  const handler = new BadStop('sink');
  const r = receiver(t, { source: new BadClose([numbered(1, 1), numbered(2, 1)], 'the list'), handlers: [handler], log });
  r.on('batch', () => {
    throw new Error('listener bug');
  });
  await r.start();
  await until(r, () => handler.accepted.length >= 2);
  await r.stop();
  await r.done;
  assert.deepEqual(handler.accepted, [1, 2]);
  assert.deepEqual(log.at('warn'), [
    "a 'batch' listener failed: listener bug",
    "a 'batch' listener failed: listener bug",
    'sink: stop() failed: cannot flush',
    'closing the list failed: socket already gone',
  ]);
});

test('ctx.reject: an index outside the batch is a RangeError naming it; a message rejected twice keeps its first reason; the letter records handler, error, attempts and source', async (t) => {
  const refusals: string[] = [];
  const handler = new RecordingHandler('h', (messages, ctx) => {
    for (const index of [-1, messages.length, 0.5]) {
      try {
        ctx.reject(index, 'never');
      } catch (error) {
        refusals.push(`${(error as Error).name}: ${(error as Error).message}`);
      }
    }
    ctx.reject(1, new TypeError('no position'));
    ctx.reject(1, 'second reason');
  });
  const deadLetters = new MemoryDeadLetterStore();
  const log = memoryLogger();
  const r = receiver(t, { source: new ListSource([numbered(1, 3)], 'the list'), handlers: [handler], deadLetters, log });
  const events: DeadLetterEvent[] = [];
  r.on('dead-letter', (e) => events.push(e));
  await r.start();
  await until(r, () => r.stats().batchesDone >= 1);
  assert.deepEqual(refusals, [
    'RangeError: reject(-1): no such message in this batch of 3',
    'RangeError: reject(3): no such message in this batch of 3',
    'RangeError: reject(0.5): no such message in this batch of 3',
  ]);
  assert.equal(events.length, 1);
  const [letter] = events[0]!.letters;
  assert.deepEqual(
    { ...letter, time: undefined },
    { time: undefined, handler: 'h', error: 'no position', errorName: 'TypeError', attempts: 1, source: 'the list', message: numbered(2, 1)[0] },
  );
  assert.ok(!Number.isNaN(Date.parse(letter!.time)), letter!.time);
  assert.deepEqual([events[0]!.handler, events[0]!.seq, events[0]!.total], ['h', 1, 1]);
  assert.deepEqual(log.at('warn'), ['h: 1 message(s) dead-lettered in memory (no position); 1 in total']);
  const stats = r.stats().handlers[0]!;
  assert.equal(stats.deadLetters, 1);
  assert.equal(stats.messages, 2, 'the rejected message is not counted as delivered');
  assert.equal((await deadLetters.read('h')).length, 1);
});

test('onUndeliverable "retry": rejected messages come back alone, reported as "n message(s) rejected: reason", until accepted', async (t) => {
  const given: number[][] = [];
  const handler = new RecordingHandler('h', (messages, ctx, call) => {
    given.push(messages.map((m) => m['test.seq'] as number));
    if (call <= 2) ctx.reject(messages.length - 1, new Error('not now'));
  });
  handler.onUndeliverable = 'retry';
  const r = receiver(t, { source: new ListSource([numbered(1, 3)]), handlers: [handler] });
  const errors: HandlerErrorEvent[] = [];
  r.on('handler-error', (e) => errors.push(e));
  await r.start();
  await until(r, () => r.stats().batchesDone >= 1);
  assert.deepEqual(given, [[1, 2, 3], [3], [3]]);
  assert.deepEqual(
    errors.map((e) => [e.error.message, e.verdict, e.messages]),
    [
      ['1 message(s) rejected: not now', 'retry', 1],
      ['1 message(s) rejected: not now', 'retry', 1],
    ],
  );
  assert.ok(errors.every((e) => typeof e.retryInMs === 'number' && e.retryInMs > 0));
  assert.equal(r.stats().handlers[0]!.deadLetters, 0);
});

test('source errors: a 429 waits at least its Retry-After; a 403 is "blocked by flespi: reasons" until a poll passes, then said to be over', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  const path = '/gw/channels/9/messages';
  server.on(
    'GET',
    path,
    { status: 429, headers: { 'Retry-After': '1' }, body: { errors: [{ reason: 'too many requests' }] } },
    {
      status: 403,
      body: {
        errors: [
          { code: 3, reason: 'token or customer is blocked' },
          { code: 3, reason: 'limit hit' },
        ],
      },
    },
    { status: 403, body: {} },
    (req) => bufferAnswer(numbered(1, 2), req),
  );
  const log = memoryLogger();
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const handler = new RecordingHandler('h');
  const r = receiver(t, { source: new RestSource({ client, channelId: 9, timeout: 1 }), handlers: [handler], log, blockedRetry: { initialMs: 5, maxMs: 10 } });
  const events: SourceErrorEvent[] = [];
  const blockedSeen: (string | undefined)[] = [];
  r.on('source-error', (e) => {
    events.push(e);
    blockedSeen.push(r.stats().blocked);
  });
  await r.start();
  await until(r, () => handler.accepted.length >= 2);
  assert.deepEqual(
    events.map((e) => [e.phase, e.fatal, e.blocked]),
    [
      ['fetch', false, undefined],
      ['fetch', false, 'blocked by flespi: token or customer is blocked; limit hit'],
      ['fetch', false, 'blocked by flespi: 403 Forbidden'],
    ],
  );
  assert.ok(events[0]!.retryInMs! >= 1000, `Retry-After 1 s, waited ${events[0]!.retryInMs} ms`);
  assert.ok(events[1]!.retryInMs! <= 10, `blockedRetry is used while blocked: ${events[1]!.retryInMs} ms`);
  assert.deepEqual(
    blockedSeen,
    events.map((e) => e.blocked),
  );
  assert.equal(r.stats().blocked, undefined);
  assert.match(r.stats().lastSourceError ?? '', /403 Forbidden/);
  assert.deepEqual(log.at('info'), ['flespi lets the receiver through again (it was blocked: 403 Forbidden)']);
});

test('a source error that is not a FlespiError is retried; a ConfigError stops the receiver', async (t) => {
  class Failing extends ListSource {
    failures = 0;
    constructor(private readonly error: () => Error) {
      super([numbered(1, 1)]);
    }
    override next(signal: AbortSignal) {
      if (this.failures < 2) {
        this.failures += 1;
        return Promise.reject(this.error());
      }
      return super.next(signal);
    }
  }
  const handler = new RecordingHandler('h');
  const plain = receiver(t, { source: new Failing(() => new Error('disk hiccup')), handlers: [handler] });
  const events: SourceErrorEvent[] = [];
  plain.on('source-error', (e) => events.push(e));
  await plain.start();
  await until(plain, () => handler.accepted.length >= 1);
  assert.deepEqual(
    events.map((e) => [e.error.message, e.fatal]),
    [
      ['disk hiccup', false],
      ['disk hiccup', false],
    ],
  );

  const config = receiver(t, { source: new Failing(() => new ConfigError('bad setting')), handlers: [new RecordingHandler('h')] });
  const fatal: SourceErrorEvent[] = [];
  config.on('source-error', (e) => fatal.push(e));
  await assert.rejects(config.start(), { message: 'bad setting' });
  await assert.rejects(config.done, { message: 'bad setting' });
  assert.deepEqual(
    fatal.map((e) => [e.error.message, e.fatal, e.retryInMs]),
    [['bad setting', true, undefined]],
  );
  assert.equal(config.state, 'failed');
});

test('a 200 whose errors deny access (ACL, code 3) stops the receiver even with onForbidden "retry": only an HTTP 403 is waited out', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  server.on('GET', '/gw/channels/9/messages', { body: { result: [], errors: [{ code: 3, reason: 'no access to channel messages' }] } });
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const r = receiver(t, { source: new RestSource({ client, channelId: 9, timeout: 1 }), handlers: [new RecordingHandler('h')], onForbidden: 'retry' });
  const events: SourceErrorEvent[] = [];
  r.on('source-error', (e) => events.push(e));
  await r.start().catch(() => {}); // start() may already see the error, or resolve just before it
  while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(events[0]!.fatal, true, `waited out instead: ${events[0]!.blocked}`);
  await assert.rejects(r.done, (e: unknown) => e instanceof FlespiError && e.kind === 'forbidden' && /no access to channel messages/.test(e.message));
  assert.deepEqual(
    events.map((e) => [e.fatal, e.blocked]),
    [[true, undefined]],
  );
  assert.equal(r.state, 'failed');
  assert.equal(server.requestsTo('GET', '/gw/channels/9/messages').length, 1);
});

test("a handler's ctx.log lines carry its name at every level", async (t) => {
  const log = memoryLogger();
  const handler = new RecordingHandler('sink-a', (_messages, ctx) => {
    ctx.log.debug('d');
    ctx.log.info('i');
    ctx.log.warn('w');
    ctx.log.error('e');
  });
  const r = receiver(t, { source: new ListSource([numbered(1, 1)]), handlers: [handler], log });
  await r.start();
  await until(r, () => handler.accepted.length === 1);
  assert.deepEqual(
    log.lines.filter((l) => l.message.startsWith('sink-a: ')),
    [
      { level: 'debug', message: 'sink-a: d' },
      { level: 'info', message: 'sink-a: i' },
      { level: 'warn', message: 'sink-a: w' },
      { level: 'error', message: 'sink-a: e' },
    ],
  );
});
