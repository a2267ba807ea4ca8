// Bench: poison messages. (1) How many attempts the receiver needs to isolate one message a handler
// can never take in a batch of 1,000, by the kind of error the handler throws, against the bound
// ⌈log2 1000⌉ + 2. (2) What one poison message per 1,000 costs in throughput: a receiver draining a
// channel into a counting handler, with and without poison, interleaved in the same run.
import { Handler, type HandlerContext } from '../src/core/handler';
import { UndeliverableError } from '../src/core/errors';
import { FlespiClient } from '../src/core/flespi/client';
import type { FlespiMessage } from '../src/core/message';
import { MemoryDeadLetterStore } from '../src/core/receiver/deadLetters';
import { Receiver } from '../src/core/receiver/receiver';
import { RestSource } from '../src/core/sources/rest';
import { startSandbox, type Sandbox } from '../src/sandbox/index';
import { measureInterleaved, summarize, type Row, type Sample } from './harness';
import { BENCH_CHANNEL_ID, realisticMessages } from './messages';

const POISON = 'bench.poison';

type Failure = 'UndeliverableError' | 'TypeError' | 'Error';

/** Counts messages; throws `failure` for any batch holding a poison message, and counts the attempts that held one. */
class PoisonedHandler extends Handler {
  accepted = 0;
  poisonAttempts = 0;
  constructor(
    private readonly failure: Failure | undefined,
    private readonly onAccepted: (total: number) => void,
  ) {
    super('bench');
  }
  async handle(messages: readonly FlespiMessage[], _ctx: HandlerContext): Promise<void> {
    if (this.failure) {
      for (const m of messages) {
        if (m[POISON] !== true) continue;
        this.poisonAttempts += 1;
        if (this.failure === 'UndeliverableError') throw new UndeliverableError('the sink refused the batch (400)');
        if (this.failure === 'TypeError') throw new TypeError("Cannot read properties of undefined (reading 'lat')");
        throw new Error('cannot convert the message');
      }
    }
    this.accepted += messages.length;
    this.onAccepted(this.accepted);
  }
}

/** Drains `count` messages (one batch per `limitCount`) through a receiver; resolves when all but the poison were accepted and the poison dead-lettered. */
async function drain(
  sandbox: Sandbox,
  count: number,
  poisoned: number,
  failure: Failure | undefined,
  limitCount: number,
): Promise<{ seconds: number; handler: PoisonedHandler; deadLetters: number }> {
  const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
  const source = new RestSource({ client, channelId: BENCH_CHANNEL_ID, limitCount, timeout: 1 });
  const deadLetters = new MemoryDeadLetterStore();
  let receiver!: Receiver;
  const t0 = performance.now();
  let handler!: PoisonedHandler;
  await new Promise<void>((resolve) => {
    handler = new PoisonedHandler(failure, (total) => total >= count - poisoned && resolve());
    receiver = new Receiver({ source, handlers: [handler], deadLetters, retry: { initialMs: 1, maxMs: 1 } });
    void receiver.start();
  });
  while (receiver.stats().handlers[0]!.deadLetters < poisoned) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (performance.now() - t0) / 1000;
  await receiver.stop();
  return { seconds, handler, deadLetters: (await deadLetters.read()).length };
}

async function sandboxWith(messages: FlespiMessage[]): Promise<Sandbox> {
  const sandbox = await startSandbox({
    restPort: 0,
    mqttPort: 0,
    simulate: false,
    capacity: Math.max(messages.length, 1_000_000),
    channelBufferBytes: Infinity,
  });
  for (let i = 0; i < messages.length; i += 10_000) sandbox.inject(BENCH_CHANNEL_ID, messages.slice(i, i + 10_000));
  return sandbox;
}

export async function benchPoison(opts: { quick: boolean }): Promise<Row[]> {
  const rows: Row[] = [];
  const bound = Math.ceil(Math.log2(1000)) + 2;

  // (1) Attempts to isolate one poison message at each position class, per error kind.
  for (const failure of ['UndeliverableError', 'TypeError', 'Error'] as const) {
    const samples: Sample[] = [];
    for (const at of [0, 437, 999]) {
      const messages = realisticMessages(1000);
      messages[at] = { ...messages[at], [POISON]: true };
      const sandbox = await sandboxWith(messages);
      try {
        const { handler, deadLetters } = await drain(sandbox, 1000, 1, failure, 1000);
        if (deadLetters !== 1 || handler.accepted !== 999) throw new Error(`${failure} at ${at}: ${deadLetters} dead letters, ${handler.accepted} accepted`);
        samples.push({ value: handler.poisonAttempts });
      } finally {
        await sandbox.stop();
      }
    }
    const summary = summarize(samples);
    rows.push({
      bench: 'Poison isolation (1 of 1,000; at 0, 437, 999)',
      case: `handler throws ${failure}`,
      unit: 'attempts',
      summary,
      target: `≤${bound} attempts`,
      note: `max ${summary.max}`,
    });
  }

  // (2) Throughput with one poison per 1,000 against none, interleaved.
  const count = opts.quick ? 20_000 : 100_000;
  const runs = opts.quick ? 1 : 3;
  const clean = realisticMessages(count);
  const poisoned = clean.map((m, i) => (i % 1000 === 437 ? { ...m, [POISON]: true } : m));
  const cleanSandbox = await sandboxWith(clean);
  const poisonSandbox = await sandboxWith(poisoned);
  try {
    const base = 'no poison';
    const subject = 'one UndeliverableError per 1,000';
    const results = await measureInterleaved(runs, {
      [base]: async () => ({ value: count / (await drain(cleanSandbox, count, 0, 'UndeliverableError', 1000)).seconds }),
      [subject]: async () => ({ value: count / (await drain(poisonSandbox, count, count / 1000, 'UndeliverableError', 1000)).seconds }),
    });
    const bench = `Receiver with poison (${count.toLocaleString('en-US')} msgs, limit_count 1000)`;
    rows.push({ bench, case: base, unit: 'msg/s', summary: results[base]! });
    rows.push({
      bench,
      case: subject,
      unit: 'msg/s',
      baseline: base,
      summary: results[subject]!,
      note: 'each poison costs ~2·log2(1000) extra handle() calls',
    });
  } finally {
    await cleanSandbox.stop();
    await poisonSandbox.stop();
  }
  return rows;
}
