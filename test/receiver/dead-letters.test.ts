// The poison-message policy: a message a handler can never deliver is isolated and dead-lettered,
// the rest of its batch goes on, and a sink that is down is retried rather than emptied into the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redeliverDeadLetters } from '../../src/core/deliver';
import { TransientError, UndeliverableError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import type { FlespiMessage } from '../../src/core/message';
import { MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';
import { FileDeadLetterStore, MemoryDeadLetterStore, deadLetterPathFor } from '../../src/core/receiver/deadLetters';
import { Receiver, type HandlerErrorEvent, type ReceiverOptions } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import type { Sandbox } from '../../src/sandbox/index';
import { CHANNEL, RecordingHandler, fastRetry, numbered, quietSandbox, range, seqs, until } from './helpers';

const TIMEOUT = { timeout: 30_000 };

function receiverFor(sandbox: Sandbox, options: Partial<ReceiverOptions> & { limitCount?: number } = {}): Receiver {
  const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
  const source = new RestSource({ client, channelId: CHANNEL, limitCount: options.limitCount ?? 1000, timeout: 1 });
  return new Receiver({ handlers: [], retry: fastRetry(), ...options, source });
}

/** Runs `handlers` over messages 1..count until `settled()` holds; returns what the run recorded. */
async function run(count: number, options: Partial<ReceiverOptions> & { limitCount?: number }, settled: () => boolean) {
  const sandbox = await quietSandbox();
  const deadLetters = (options.deadLetters as MemoryDeadLetterStore | undefined) ?? new MemoryDeadLetterStore();
  const checkpoints = new MemoryCheckpointStore();
  const receiver = receiverFor(sandbox, { checkpoints, deadLetters, ...options });
  const errors: HandlerErrorEvent[] = [];
  receiver.on('handler-error', (e) => errors.push(e));
  try {
    sandbox.inject(CHANNEL, numbered(1, count));
    await receiver.start();
    await until(receiver, settled);
    const stats = receiver.stats();
    return { errors, deadLetters, stats, checkpoint: await checkpoints.load() };
  } finally {
    await receiver.stop();
    await sandbox.stop();
  }
}

/** How many handle() calls included the message with `test.seq` = seq. */
function callsWith(handler: RecordingHandler & { batches: number[][] }, seq: number): number {
  return handler.batches.filter((b) => b.includes(seq)).length;
}

/** A RecordingHandler that also remembers every batch it was given, accepted or not. */
function recording(name: string, behaviour: (messages: readonly FlespiMessage[]) => void) {
  const batches: number[][] = [];
  const handler = new RecordingHandler(name, (messages) => {
    batches.push(seqs(messages));
    behaviour(messages);
  }) as RecordingHandler & { batches: number[][] };
  handler.batches = batches;
  return handler;
}

test(
  'an UndeliverableError is isolated by bisection in ⌈log2 n⌉ + 1 attempts: the poison is dead-lettered with its reason, the other 999 accepted, the checkpoint moves on',
  TIMEOUT,
  async () => {
    const POISON = 437;
    const sink = recording('http', (messages) => {
      if (seqs(messages).includes(POISON)) throw new UndeliverableError('the endpoint answered 400: field "test.seq" is invalid');
    });
    const { deadLetters, stats, checkpoint } = await run(1000, { handlers: [sink] }, () => sink.accepted.length >= 999);
    assert.deepEqual(
      [...sink.accepted].sort((a, b) => a - b),
      range(1, 1000).filter((s) => s !== POISON),
    );
    const letters = await deadLetters.read();
    assert.equal(letters.length, 1);
    assert.equal(letters[0]!.message['test.seq'], POISON);
    assert.equal(letters[0]!.handler, 'http');
    assert.equal(letters[0]!.errorName, 'UndeliverableError');
    assert.match(letters[0]!.error, /answered 400/);
    assert.ok(callsWith(sink, POISON) <= Math.ceil(Math.log2(1000)) + 1, `the poison was in ${callsWith(sink, POISON)} attempts`);
    assert.equal(stats.handlers[0]!.deadLetters, 1);
    assert.equal(stats.messagesDone, 1000, 'the batch was acknowledged');
    assert.ok(checkpoint !== undefined, 'and checkpointed');
  },
);

test(
  'an engine error (a TypeError on a message the handler does not expect) is retried splitAfter times, then isolated and dead-lettered',
  TIMEOUT,
  async () => {
    const POISON = 20;
    const sink = recording('custom', (messages) => {
      for (const m of messages) if (m['test.seq'] === POISON) (m as { position?: { lat: number } }).position!.lat.toFixed(); // TypeError
    });
    const { deadLetters, errors } = await run(64, { handlers: [sink], splitAfter: 2 }, () => sink.accepted.length >= 63);
    const letters = await deadLetters.read();
    assert.deepEqual(
      letters.map((l) => [l.message['test.seq'], l.errorName]),
      [[POISON, 'TypeError']],
    );
    assert.equal(callsWith(sink, POISON), 2 + Math.log2(64), 'two tries of the whole batch, then one per halving');
    assert.deepEqual(
      errors.slice(0, 2).map((e) => [e.verdict, e.messages]),
      [
        ['retry', 64],
        ['isolating', 64],
      ],
    );
    assert.equal(errors.at(-1)!.verdict, 'dead-letter');
  },
);

test(
  'a sink that fails everything with a plain Error (down, as far as anyone can tell) is retried, never emptied into the dead-letter store; once it recovers every message arrives',
  TIMEOUT,
  async () => {
    let down = true;
    const sink = recording('db', () => {
      if (down) throw new Error('connection to the database lost');
    });
    const done = run(40, { handlers: [sink], limitCount: 40 }, () => sink.accepted.length >= 40);
    await new Promise((resolve) => setTimeout(resolve, 400)); // many failed attempts with fastRetry's short backoff
    const failedCalls = sink.batches.length;
    down = false;
    const { deadLetters } = await done;
    assert.ok(failedCalls >= 3, `the sink was tried ${failedCalls} times while down`);
    assert.equal((await deadLetters.read()).length, 0);
    assert.deepEqual(
      [...sink.accepted].sort((a, b) => a - b),
      range(1, 40),
    );
  },
);

test(
  'two poison messages behind a plain Error are both found: a part that fails alone is set behind the rest until the handler has shown it works',
  TIMEOUT,
  async () => {
    const POISON = new Set([1, 30]);
    const sink = recording('custom', (messages) => {
      if (seqs(messages).some((s) => POISON.has(s))) throw new Error('cannot convert');
    });
    const { deadLetters } = await run(32, { handlers: [sink], limitCount: 32 }, () => sink.accepted.length >= 30);
    assert.deepEqual(
      (await deadLetters.read()).map((l) => l.message['test.seq']).sort((a, b) => (a as number) - (b as number)),
      [1, 30],
    );
    assert.deepEqual(
      [...sink.accepted].sort((a, b) => a - b),
      range(1, 32).filter((s) => !POISON.has(s)),
    );
  },
);

test('ctx.reject names undeliverable messages: they are dead-lettered, the rest is accepted in the same attempt, nothing is retried', TIMEOUT, async () => {
  const sink = new RecordingHandler('mqtt', (messages, ctx) => {
    messages.forEach((m, i) => {
      if ((m['test.seq'] as number) % 10 === 0) ctx.reject(i, new UndeliverableError(`topic for ${String(m['test.seq'])} cannot be formed`));
    });
  });
  const { deadLetters, errors } = await run(50, { handlers: [sink], limitCount: 50 }, () => sink.calls >= 1 && sink.accepted.length >= 50);
  assert.equal(sink.calls, 1);
  assert.deepEqual(
    (await deadLetters.read()).map((l) => [l.message['test.seq'], l.error]),
    [10, 20, 30, 40, 50].map((s) => [s, `topic for ${s} cannot be formed`]),
  );
  assert.equal(errors.length, 0);
});

test('onUndeliverable "stop" stops the receiver with the reason and leaves the batch unacknowledged', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 10));
    const sink = new RecordingHandler('strict', (messages) => {
      if (seqs(messages).includes(5)) throw new UndeliverableError('message 5 is malformed');
    });
    sink.onUndeliverable = 'stop';
    const deadLetters = new MemoryDeadLetterStore();
    const checkpoints = new MemoryCheckpointStore();
    const receiver = receiverFor(sandbox, { handlers: [sink], checkpoints, deadLetters });
    await receiver.start();
    await assert.rejects(receiver.done, /strict cannot deliver a message \(message 5 is malformed\); its onUndeliverable policy is "stop"/);
    assert.equal(receiver.state, 'failed');
    assert.equal(await checkpoints.load(), undefined, 'no checkpoint: the batch is fetched again next run');
    assert.equal((await deadLetters.read()).length, 0);
  } finally {
    await sandbox.stop();
  }
});

test('onUndeliverable "retry" keeps retrying the batch as before, and dead-letters nothing', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 8));
    const sink = recording('patient', (messages) => {
      if (seqs(messages).includes(3)) throw new UndeliverableError('not now');
    });
    sink.onUndeliverable = 'retry';
    const deadLetters = new MemoryDeadLetterStore();
    const receiver = receiverFor(sandbox, { handlers: [sink], deadLetters });
    const errors: HandlerErrorEvent[] = [];
    receiver.on('handler-error', (e) => errors.push(e));
    await receiver.start();
    while (errors.length < 5) await new Promise((resolve) => setTimeout(resolve, 20));
    await receiver.stop();
    assert.ok(
      sink.batches.every((b) => b.length === 8),
      'always the whole batch: no bisection',
    );
    assert.ok(errors.every((e) => e.verdict === 'retry'));
    assert.equal((await deadLetters.read()).length, 0);
    assert.equal(receiver.stats().messagesDone, 0);
  } finally {
    await sandbox.stop();
  }
});

test('a full dead-letter store holds the batch unacknowledged (nothing dropped) until there is room', TIMEOUT, async () => {
  const sandbox = await quietSandbox();
  try {
    sandbox.inject(CHANNEL, numbered(1, 6));
    const sink = new RecordingHandler('picky', (messages, ctx) => {
      messages.forEach((m, i) => {
        if ((m['test.seq'] as number) <= 3) ctx.reject(i, 'no');
      });
    });
    const deadLetters = new MemoryDeadLetterStore(2);
    const receiver = receiverFor(sandbox, { handlers: [sink], deadLetters });
    const errors: HandlerErrorEvent[] = [];
    receiver.on('handler-error', (e) => errors.push(e));
    await receiver.start();
    while (errors.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.match(errors[0]!.error.message, /dead-letter store is full \(2 messages\)/);
    assert.equal(receiver.stats().messagesDone, 0, 'not acknowledged while the letters have nowhere to go');
    (deadLetters as unknown as { maxLetters: number }).maxLetters = 10;
    await until(receiver, () => receiver.stats().messagesDone === 6);
    await receiver.stop();
    assert.deepEqual(
      (await deadLetters.read()).map((l) => l.message['test.seq']),
      [1, 2, 3],
    );
  } finally {
    await sandbox.stop();
  }
});

test(
  'FileDeadLetterStore: NDJSON that survives a restart and a torn last line, holds a message nested 6,000 deep, refuses past its bound, and removes what was sent again',
  TIMEOUT,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flespi-dlq-'));
    try {
      const path = deadLetterPathFor(join(dir, 'receiver.channel-7.checkpoint.json'));
      assert.equal(path, join(dir, 'receiver.channel-7.dead-letters.ndjson'));
      let deep: unknown = 1;
      for (let i = 0; i < 6000; i++) deep = { d: deep };
      const letter = (seq: number, message: FlespiMessage = { 'test.seq': seq }) => ({
        time: new Date().toISOString(),
        handler: 'h',
        error: 'bad',
        errorName: 'UndeliverableError',
        attempts: 1,
        message,
      });
      const store = new FileDeadLetterStore(path, 1_000_000);
      await store.add([letter(1), letter(2, { 'test.seq': 2, deep })]);
      await appendFile(path, '{"time":"2026-12-07T00:00:00Z","handler":"h","err'); // a crash mid-append
      const reopened = new FileDeadLetterStore(path, 1_000_000);
      const letters = await reopened.read();
      assert.deepEqual(
        letters.map((l) => l.message['test.seq']),
        [1, 2],
      );
      let depth = 0;
      for (let node = letters[1]!.message.deep as { d?: unknown }; typeof node === 'object'; node = node.d as { d?: unknown }) depth++;
      assert.equal(depth, 6000);
      assert.deepEqual(await reopened.counts(), new Map([['h', 2]]));
      await reopened.remove([letters[0]!]);
      assert.deepEqual(
        (await reopened.read()).map((l) => l.message['test.seq']),
        [2],
      );
      const small = new FileDeadLetterStore(path, 100);
      await assert.rejects(small.add([letter(3)]), /dead-letter file .* is full/);
      assert.equal((await readFile(path, 'utf8')).split('\n').filter(Boolean).length, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test('a transient error is retried on the whole batch and never bisected', TIMEOUT, async () => {
  let failures = 4;
  const sink = recording('wialon', () => {
    if (failures-- > 0) throw new TransientError('the receiver is down');
  });
  const { deadLetters, errors } = await run(100, { handlers: [sink], limitCount: 100 }, () => sink.accepted.length >= 100);
  assert.ok(sink.batches.every((b) => b.length === 100));
  assert.deepEqual(
    errors.map((e) => e.verdict),
    ['retry', 'retry', 'retry', 'retry'],
  );
  assert.equal((await deadLetters.read()).length, 0);
});

test(
  "redeliverDeadLetters sends a handler's letters again through a fresh handler: accepted ones leave the store, those rejected again stay with the reason",
  TIMEOUT,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flespi-dlq-'));
    try {
      const store = new FileDeadLetterStore(join(dir, 'dl.ndjson'));
      const letter = (handler: string, seq: number) => ({
        time: new Date().toISOString(),
        handler,
        error: 'was down',
        errorName: 'UndeliverableError',
        attempts: 3,
        message: { 'test.seq': seq },
      });
      await store.add([letter('http', 1), letter('http', 2), letter('mqtt', 3), letter('http', 4)]);
      const created: RecordingHandler[] = [];
      const fixed = () => {
        const handler = new RecordingHandler('http', (messages, ctx) => messages.forEach((m, i) => m['test.seq'] === 4 && ctx.reject(i, 'still too big')));
        created.push(handler);
        return handler;
      };
      const outcome = await redeliverDeadLetters(store, 'http', fixed, { timeoutMs: 5_000, batchSize: 2 });
      assert.equal(created.length, 2, 'one fresh handler per batch of 2');
      assert.deepEqual(
        created.flatMap((h) => h.accepted),
        [1, 2, 4],
      );
      assert.deepEqual(
        { sent: outcome.sent, remaining: outcome.remaining, errors: outcome.errors },
        { sent: 2, remaining: 1, errors: ['dead letter 3: still too big'] },
      );
      assert.deepEqual(
        (await store.read()).map((l) => [l.handler, l.message['test.seq']]),
        [
          ['mqtt', 3],
          ['http', 4],
        ],
      );
      const down = await redeliverDeadLetters(
        store,
        'http',
        () =>
          new RecordingHandler('http', () => {
            throw new TransientError('connection refused');
          }),
        { timeoutMs: 5_000 },
      );
      assert.deepEqual({ sent: down.sent, remaining: down.remaining }, { sent: 0, remaining: 1 });
      assert.match(down.errors[0]!, /connection refused/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'FileDeadLetterStore records a message with a BigInt (as its digits) and one with a cycle (as why it cannot be written), never failing the record',
  TIMEOUT,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flespi-dlq-'));
    try {
      const store = new FileDeadLetterStore(join(dir, 'dl.ndjson'));
      const cyclic: Record<string, unknown> = { 'test.seq': 2 };
      cyclic.self = cyclic;
      const letter = (message: FlespiMessage) => ({ time: 't', handler: 'custom', error: 'bad', errorName: 'UndeliverableError', attempts: 1, message });
      await store.add([letter({ 'test.seq': 1, big: 12345678901234567890n }), letter(cyclic)]);
      const letters = await store.read();
      assert.deepEqual(letters[0]!.message, { 'test.seq': 1, big: '12345678901234567890' });
      assert.match(String(letters[1]!.message.unserializable), /circular/i);
      assert.equal(letters[1]!.handler, 'custom');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
