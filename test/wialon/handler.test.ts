import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { WialonAckTimeoutError, WialonHandler, wialonSpec, type WialonHandlerOptions } from '../../src/core/handlers/wialon';
import type { HandlerContext } from '../../src/core/handler';
import type { Logger } from '../../src/core/logger';
import { unexpectedReject } from '../support/logger';
import type { FlespiMessage } from '../../src/core/message';
import { ConfigError } from '../../src/core/options';
import { DEFAULT_MAX_PACKET_BYTES, findBlock } from '../../src/core/wialon/codec';
import { startWialonTestReceiver, type WialonTestReceiver } from '../support/wialonReceiver';

const env = { resolvePath: (p: string) => p };

class RecordingLogger implements Logger {
  readonly lines: string[] = [];
  debug(m: string) {
    this.lines.push(`debug: ${m}`);
  }
  info(m: string) {
    this.lines.push(`info: ${m}`);
  }
  warn(m: string) {
    this.lines.push(`warn: ${m}`);
  }
  error(m: string) {
    this.lines.push(`error: ${m}`);
  }
}

function context(
  signal = new AbortController().signal,
  attempt = 1,
  reject: HandlerContext['reject'] = unexpectedReject,
): HandlerContext & { log: RecordingLogger } {
  return { signal, attempt, log: new RecordingLogger(), reject };
}

/** A context that records ctx.reject calls: index -> the reason's text. */
function rejecting(signal?: AbortSignal): HandlerContext & { log: RecordingLogger; rejected: Map<number, string> } {
  const rejected = new Map<number, string>();
  return { ...context(signal, 1, (index, reason) => rejected.set(index, String(reason))), rejected };
}

/** Messages with a `seq` parameter so each one can be traced to the receiver. */
function messages(count: number, from = 0): FlespiMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    ident: `unit-${(from + i) % 3}`,
    timestamp: 1700000000 + from + i + 0.5,
    seq: from + i,
    'position.latitude': 53.9 + i / 1000,
    'position.longitude': 27.56,
    'position.speed': 40,
  }));
}

function seqs(receiver: WialonTestReceiver): number[] {
  return receiver.packets.map((p) => findBlock(p, 'seq')?.value as number);
}

// What setup() started is closed after each test, also when the test timed out before its `finally`
// (an open socket or server would keep the test process alive).
const cleanups = new Set<() => Promise<void>>();
afterEach(async () => {
  for (const cleanup of cleanups) await cleanup();
  cleanups.clear();
});

async function setup(
  options: Partial<WialonHandlerOptions> = {},
): Promise<{ receiver: WialonTestReceiver; handler: WialonHandler; done: () => Promise<void> }> {
  const { receiver, port } = await startWialonTestReceiver();
  const handler = new WialonHandler({ host: '127.0.0.1', port, ackTimeoutMs: 2000, window: 4, connectTimeoutMs: 2000, ...options }, 'wialon-test');
  const done = async () => {
    await handler.stop();
    await receiver.close();
  };
  cleanups.add(done);
  return { receiver, handler, done };
}

test('spec: valid options build a handler with defaults; bad ones give a ConfigError naming the setting', () => {
  const handler = wialonSpec.create({ type: 'wialon', host: 'wialon.example.com', port: 20163 }, env, 'main');
  assert.ok(handler instanceof WialonHandler);
  assert.deepEqual(handler.options, { host: 'wialon.example.com', port: 20163, ackTimeoutMs: 10000, window: 16, connectTimeoutMs: 10000 });
  const bad = (options: Record<string, unknown>, message: RegExp) =>
    assert.throws(
      () => wialonSpec.create({ type: 'wialon', ...options }, env, 'main'),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
    );
  bad({ port: 20163 }, /handler "main" \(wialon\): "host" is required/);
  bad({ host: 'h' }, /"port" is required/);
  bad({ host: 'h', port: 0 }, /"port" must be an integer from 1 to 65535, got number 0/);
  bad({ host: 'h', port: 70000 }, /"port" must be an integer from 1 to 65535/);
  bad({ host: 'h', port: '20163' }, /"port" must be an integer from 1 to 65535, got "20163"/);
  bad({ host: 'h:20163', port: 20163 }, /"host" must be a host name or IP address only.*put the port in "port"/);
  bad({ host: 'tcp://h', port: 20163 }, /"host" must be a host name or IP address only/);
  bad({ host: 'h', port: 1, window: 0 }, /"window" must be an integer from 1 to 10000/);
  bad({ host: 'h', port: 1, ackTimeoutMs: 5 }, /"ackTimeoutMs" must be an integer from 100/);
  bad({ host: 'h', port: 1, connectTimeoutMs: 1.5 }, /"connectTimeoutMs" must be an integer/);
  bad({ host: 'h', port: 1, windw: 3 }, /unknown setting "windw"/);
});

test('a batch is delivered through a window and acked packet by packet', async () => {
  const { receiver, handler, done } = await setup({ window: 4 });
  try {
    await handler.start();
    assert.equal(handler.health().connected, true);
    const batch = messages(25);
    await handler.handle(batch, context());
    assert.deepEqual(
      seqs(receiver),
      batch.map((m) => m.seq),
      'every message once, in order',
    );
    assert.equal(receiver.acksSent, 25);
    assert.equal(handler.stats.packetsAcked, 25);
    assert.equal(handler.stats.packetsSent, 25);
    assert.equal(receiver.packets[0].unitId, 'unit-0');
    assert.equal(receiver.packets[0].time, 1700000000);
    assert.deepEqual(handler.health(), { connected: true, detail: '0 packets awaiting ack' });
    // The connection persists across batches.
    await handler.handle(messages(5, 25), context());
    assert.equal(receiver.connectionCount, 1);
    assert.equal(receiver.received.length, 30);
  } finally {
    await done();
  }
});

test('stop-and-wait (window 1) with slow acks still delivers everything', async () => {
  const { receiver, handler, done } = await setup({ window: 1 });
  try {
    receiver.setAckDelay(5);
    await handler.handle(messages(6), context());
    assert.deepEqual(seqs(receiver), [0, 1, 2, 3, 4, 5]);
    assert.equal(handler.stats.packetsAcked, 6);
  } finally {
    await done();
  }
});

test('messages without ident or timestamp are rejected with the reason (ctx.reject), counted in health() and logged once; the others are sent', async () => {
  const { receiver, handler, done } = await setup();
  try {
    const ctx = rejecting();
    const batch = [{ timestamp: 1, seq: 100 }, ...messages(2), { ident: 'x', seq: 101 }, { ident: 'x', seq: 102 }];
    await handler.handle(batch, ctx);
    assert.deepEqual(seqs(receiver), [0, 1]);
    assert.deepEqual([...ctx.rejected.keys()], [0, 3, 4]);
    assert.match(ctx.rejected.get(0)!, /^UndeliverableError: the message cannot be sent to Wialon: message has no "ident"/);
    assert.match(ctx.rejected.get(3)!, /^UndeliverableError: the message cannot be sent to Wialon: message has no "timestamp"/);
    assert.equal(handler.stats.messagesSkipped, 3);
    assert.match(handler.health().detail ?? '', /3 messages rejected as unsendable \(no ident\/timestamp, or too large\)/);
    const warnings = ctx.log.lines.filter((l) => l.startsWith('warn:'));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0],
      /the message cannot be sent to Wialon: message has no "ident".*\(rejected as undeliverable; further ones are counted in the status\)/,
    );
    assert.equal(ctx.log.lines.filter((l) => l.startsWith('debug:') && /no "timestamp"/.test(l)).length, 2);
  } finally {
    await done();
  }
});

test('a message whose packet would exceed the 16 MB receivers accept is rejected; the strict receiver never sees it and keeps the connection', async () => {
  const { receiver, handler, done } = await setup();
  try {
    const ctx = rejecting();
    const huge = { ident: 'u', timestamp: 1, seq: 50, text: 'x'.repeat(DEFAULT_MAX_PACKET_BYTES) };
    await handler.handle([...messages(1), huge, ...messages(1, 1)], ctx);
    assert.deepEqual([...ctx.rejected.keys()], [1]);
    assert.match(ctx.rejected.get(1)!, /^UndeliverableError: the Wialon packet would be \d+ bytes; Wialon receivers accept at most 16777216$/);
    assert.deepEqual(seqs(receiver), [0, 1]);
    assert.equal(receiver.connectionCount, 1);
  } finally {
    await done();
  }
});

test("an attempt that fails after rejecting a message: the retry of the same batch rejects it again (a failed attempt's rejections do not count)", async () => {
  const { receiver, handler, done } = await setup();
  try {
    const batch = [{ timestamp: 1, seq: 100 }, ...messages(2)];
    const cancelled = new AbortController();
    cancelled.abort(new Error('attempt timed out'));
    const first = rejecting(cancelled.signal);
    await assert.rejects(handler.handle(batch, first), /attempt timed out/);
    assert.deepEqual([...first.rejected.keys()], [0]);
    const retry = rejecting();
    await handler.handle(batch, retry);
    assert.deepEqual([...retry.rejected.keys()], [0], 'told again in the attempt that succeeds');
    assert.deepEqual(seqs(receiver), [0, 1]);
    assert.equal(handler.stats.messagesSkipped, 1, 'encoded once');
  } finally {
    await done();
  }
});

test('parameter issues are counted and logged once per parameter', async () => {
  const { receiver, handler, done } = await setup();
  try {
    const ctx = context();
    const long = 'a.very.long.parameter.name.from.some.device.x';
    await handler.handle(
      [1, 2].map((i) => ({ ident: 'u', timestamp: i, [long]: i, gone: null })),
      ctx,
    );
    assert.equal(receiver.received.length, 2);
    assert.equal(handler.stats.parameterIssues, 4);
    assert.deepEqual(
      ctx.log.lines.map((l) => l.replace(/"a\.very[^"]*~[0-9a-f]{8}"/, '"<short>"')),
      [
        `info: wialon-test: parameter "${long}" sent as "<short>": the name is longer than Wialon's 38-byte limit (logged once)`,
        'warn: wialon-test: parameter "gone" not sent: the value is null (logged once)',
      ],
    );
  } finally {
    await done();
  }
});

test('receiver stops acking: handle() fails with an ack timeout; after it resumes, the retry succeeds and every message arrives', async () => {
  const { receiver, handler, done } = await setup({ ackTimeoutMs: 300, window: 3 });
  try {
    const batch = messages(10);
    receiver.pauseAcks();
    await assert.rejects(
      handler.handle(batch, context()),
      (e: unknown) => e instanceof WialonAckTimeoutError && /did not acknowledge 3 packets within 300 ms/.test(e.message),
    );
    assert.equal(handler.health().connected, false, 'the connection is dropped so late acks cannot be miscredited');
    receiver.resumeAcks();
    await handler.handle(batch, context(undefined, 2));
    const received = new Set(seqs(receiver));
    assert.deepEqual(
      [...received].sort((a, b) => a - b),
      batch.map((m) => m.seq),
    );
    assert.ok(receiver.received.length > batch.length, 'the unacked packets were sent again (at-least-once)');
    assert.equal(handler.stats.packetsResent, 3);
    assert.equal(receiver.connectionCount, 2);
  } finally {
    await done();
  }
});

test('receiver closes the connection mid-batch: the handler reconnects and resends what was not acked', async () => {
  const { receiver, handler, done } = await setup({ window: 4 });
  try {
    const ctx = context();
    const batch = messages(20);
    await handler.start();
    receiver.closeConnectionsAfter(7);
    await handler.handle(batch, ctx);
    assert.deepEqual(
      [...new Set(seqs(receiver))].sort((a, b) => a - b),
      batch.map((m) => m.seq),
    );
    assert.equal(receiver.connectionCount, 2);
    assert.ok(handler.stats.packetsResent >= 1, 'the packet the receiver kept without acking is resent');
    assert.equal(handler.stats.packetsAcked, 20);
    assert.ok(
      ctx.log.lines.some((l) => /closed the connection with \d+ packets awaiting ack; reconnecting in 250 ms to resend \d+ unacknowledged packets/.test(l)),
    );
    // Everything after the break arrived on the new connection, in order.
    const second = receiver.received.filter((r) => r.connection === 2).map((r) => findBlock(r.packet, 'seq')?.value);
    assert.deepEqual(
      second,
      batch.slice(batch.length - second.length).map((m) => m.seq),
    );
  } finally {
    await done();
  }
});

test('a connection lost with the whole batch sent: the new connection resends every unacked packet, from the first one', async () => {
  const { receiver, handler, done } = await setup({ window: 16, ackTimeoutMs: 1000 });
  try {
    const ctx = context();
    const batch = messages(10);
    await handler.start();
    receiver.closeConnectionsAfter(3); // acks packets 0 and 1, keeps packet 2 without an ack, drops the rest of the stream
    await handler.handle(batch, ctx);
    assert.equal(receiver.received.filter((r) => r.connection === 1).length, 3);
    const second = receiver.received.filter((r) => r.connection === 2).map((r) => findBlock(r.packet, 'seq')?.value as number);
    const resentFrom = second[0] ?? -1;
    assert.ok(
      resentFrom >= 0 && resentFrom <= 2,
      `the second connection starts at or before the packet that lost its ack, got ${second.join(', ') || 'nothing'}`,
    );
    assert.deepEqual(
      second,
      batch.slice(resentFrom).map((m) => m.seq),
      'and resends the rest in order',
    );
    assert.equal(handler.stats.packetsResent, 10 - resentFrom, 'every packet after the last ack was sent before, so each is a resend');
    assert.equal(handler.stats.packetsSent, 10 + handler.stats.packetsResent);
    assert.equal(handler.stats.packetsAcked, 10);
  } finally {
    await done();
  }
});

test('the peer closing an idle connection between batches is not an error', async () => {
  const { receiver, handler, done } = await setup();
  try {
    await handler.handle(messages(2), context());
    receiver.closeConnections();
    await handler.handle(messages(2, 2), context());
    assert.deepEqual([...new Set(seqs(receiver))], [0, 1, 2, 3]);
    assert.equal(receiver.connectionCount, 2);
  } finally {
    await done();
  }
});

test('an aborted attempt drops its connection, so its late acks are never credited to the next batch', async () => {
  const { receiver, handler, done } = await setup({ ackTimeoutMs: 1500, window: 8 });
  try {
    receiver.setAckDelay(300);
    const abort = new AbortController();
    const first = handler.handle(messages(3), context(abort.signal));
    await receiver.waitFor(3); // sent and decoded; their acks are still on the way
    abort.abort(new Error('attempt timed out'));
    await assert.rejects(first, /attempt timed out/);
    receiver.pauseAcks(); // the next batch gets no acks at all...
    await assert.rejects(handler.handle(messages(3, 3), context()), WialonAckTimeoutError); // ...so it must not succeed on stale ones
    assert.deepEqual(
      receiver.received.map((r) => r.connection),
      [1, 1, 1, 2, 2, 2],
    );
  } finally {
    await done();
  }
});

test('overlapping handle() calls take turns and both complete', async () => {
  const { receiver, handler, done } = await setup({ window: 2 });
  try {
    receiver.setAckDelay(2);
    await Promise.all([handler.handle(messages(5), context()), handler.handle(messages(5, 5), context())]);
    assert.deepEqual(seqs(receiver), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  } finally {
    await done();
  }
});

test('nothing listening: handle() fails with a clear error after a few reconnects; health() says why', async () => {
  const probe = createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
  await new Promise((resolve) => probe.close(resolve));
  const handler = new WialonHandler({ host: '127.0.0.1', port, ackTimeoutMs: 1000, window: 4, connectTimeoutMs: 1000 });
  const ctx = context();
  await handler.start(); // only a warning
  await assert.rejects(handler.handle(messages(1), ctx), new RegExp(`cannot connect to Wialon at 127.0.0.1:${port}: connect ECONNREFUSED`));
  assert.equal(ctx.log.lines.filter((l) => /reconnecting in/.test(l)).length, 3);
  assert.deepEqual(handler.health().connected, false);
  assert.match(handler.health().detail ?? '', /ECONNREFUSED/);
  await handler.stop();
});

test('an empty batch, or one with only unsendable messages, succeeds without connecting', async () => {
  const { receiver, handler, done } = await setup();
  try {
    await handler.handle([], context());
    const ctx = rejecting();
    await handler.handle([{ seq: 1 }], ctx);
    assert.deepEqual([...ctx.rejected.keys()], [0]);
    assert.equal(receiver.connectionCount, 0);
  } finally {
    await done();
  }
});

test('an unexpected error while encoding fails handle() with that error at once (no reconnect loop), and the next batch still goes through', async () => {
  const { receiver, handler, done } = await setup();
  try {
    const broken = { ...messages(1)[0], seq: 7 };
    Object.defineProperty(broken, 'boom', {
      enumerable: true,
      get: () => {
        throw new Error('getter exploded');
      },
    });
    await assert.rejects(handler.handle([...messages(2), broken], context()), /getter exploded/);
    await handler.handle(messages(3), context());
    assert.ok(seqs(receiver).filter((s) => s === 2).length >= 1, 'the later batch arrived');
  } finally {
    await done();
  }
});
