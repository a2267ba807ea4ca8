// Property (issue 11): whatever a message holds, every built-in sink ends it accepted or dead-lettered,
// within a bounded number of attempts; none is lost and none stalls the channel.
//
// fast-check builds batches of adversarial messages (control characters, noncharacters and lone
// surrogates, `$`/`#`/`+`/`/`, strings and keys up to 70,000 characters, nesting up to 7,000 levels,
// NaN/±Infinity/-0/huge numbers, BigInt, idents and timestamps Wialon cannot take), and a real Receiver
// hands them to real sinks: stdout, HTTP to a real server, MQTT to Mosquitto (topic `{name}/{ident}`)
// and Wialon to the strict test receiver, with a memory dead-letter store. Seeded: FC_SEED=<n> replays
// a run (the seed is printed as a diagnostic, and by fast-check with the counterexample on failure).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { HttpHandler } from '../../src/core/handlers/http';
import { mqttSpec } from '../../src/core/handlers/mqtt';
import { StdoutHandler } from '../../src/core/handlers/stdout';
import { WialonHandler } from '../../src/core/handlers/wialon';
import type { FlespiMessage } from '../../src/core/message';
import { MemoryDeadLetterStore } from '../../src/core/receiver/deadLetters';
import { Receiver } from '../../src/core/receiver/receiver';
import { ListSource } from '../support/listSource';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto';
import { nested } from '../support/rejects';
import { subscribe, type Subscriber } from '../support/subscriber';
import { HttpSink, ID, Ledger, WialonSink, waitUntil } from './support';

const SEED = Number(process.env.FC_SEED ?? 11_2026);
const RUNS = Number(process.env.FC_RUNS ?? 30);
const SINKS = ['stdout', 'http', 'mqtt', 'wialon'] as const;
const MAX_BATCH = 5;
const SPLIT_AFTER = 2;
/** Attempts a message may be part of before it is dead-lettered: splitAfter tries, halvings down to one, a last try, and one of slack. */
const MAX_ATTEMPTS = SPLIT_AFTER + Math.ceil(Math.log2(MAX_BATCH)) + 2;

// ---- what the messages hold -------------------------------------------------------------------

const special = fc.constantFrom(
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u009b',
  '\ud800',
  '\udfff',
  '\ufffe',
  '\uffff',
  '\ufdd0',
  '\u{1fffe}',
  '$',
  '#',
  '+',
  '/',
  '{',
  '}',
  '"',
  '\\',
  '\n',
  '\u2028',
  'Ж',
  '🚚',
  ' ',
);
const unit = fc.oneof(special, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
const shortText = fc.string({ unit, maxLength: 12 });
/** Long text, cut anywhere (so a surrogate pair may be split). */
const longText = fc
  .tuple(fc.string({ unit, minLength: 1, maxLength: 3 }), fc.integer({ min: 200, max: 70_000 }))
  .map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n));
const text = fc.oneof(
  { weight: 6, arbitrary: shortText },
  { weight: 1, arbitrary: longText },
  { weight: 2, arbitrary: fc.constantFrom('$SYS', '$share/g/t', '$aws/things/x', '#', '+/+', '', 'unknown') },
);
const oddNumber = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 0.1),
  fc.double(),
  fc.integer(),
);
const value = fc.oneof(
  { weight: 5, arbitrary: text },
  { weight: 4, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 7000 }).map((depth) => nested(depth)) },
  { weight: 1, arbitrary: fc.array(fc.oneof(shortText, oddNumber), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(shortText, fc.oneof(shortText, oddNumber), { maxKeys: 3 }) },
);
const key = text.filter((k) => k !== ID && k !== '__proto__' && k !== 'ident' && k !== 'timestamp' && k !== 'name');
const message = fc.record({
  ident: fc.option(fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,12}$/), text), { nil: undefined }),
  timestamp: fc.option(fc.oneof(fc.integer({ min: 1_600_000_000, max: 1_800_000_000 }), oddNumber), { nil: undefined }),
  name: fc.option(text, { nil: undefined }),
  extra: fc.array(fc.tuple(key, value), { maxLength: 4 }),
});
const scenario = fc.record({ messages: fc.array(message, { minLength: 1, maxLength: 12 }), batchSize: fc.integer({ min: 1, max: MAX_BATCH }) });

type GeneratedMessage = typeof message extends fc.Arbitrary<infer T> ? T : never;
function build(generated: GeneratedMessage, id: number): FlespiMessage {
  const m: FlespiMessage = {};
  for (const [k, v] of generated.extra) m[k] = v as FlespiMessage[string];
  if (generated.ident !== undefined) m.ident = generated.ident;
  if (generated.timestamp !== undefined) m.timestamp = generated.timestamp;
  if (generated.name !== undefined) m.name = generated.name;
  m[ID] = id;
  return m;
}

function holdsBigInt(m: FlespiMessage): boolean {
  return Object.values(m).some((v) => typeof v === 'bigint');
}

// ---- the sinks --------------------------------------------------------------------------------

let broker: RunningMosquitto;
let subscriber: Subscriber;
let http: HttpSink;
let wialon: WialonSink;
const ledger = new Ledger(SINKS);
let mqttSynced = 0;

before(async () => {
  broker = await startMosquitto({ extraConfig: ['max_queued_messages 100000'] });
  subscriber = await subscribe(broker.url, '#');
  http = await new HttpSink(ledger, 'http').listen();
  wialon = await new WialonSink(ledger, 'wialon').listen();
});

after(async () => {
  await subscriber?.close();
  await http?.close();
  await wialon?.close();
  await broker?.stop();
});

function syncMqtt(): void {
  const fresh = subscriber.messages.slice(mqttSynced);
  mqttSynced = subscriber.messages.length;
  ledger.add(
    'mqtt',
    fresh.map((m) => (m.json as FlespiMessage | undefined)?.[ID]).filter((id): id is number => typeof id === 'number'),
  );
}

let nextId = 1;

test(
  `every built-in sink ends each adversarial message accepted or dead-lettered, within ${MAX_ATTEMPTS} attempts (seeded property, ${RUNS} runs)`,
  { timeout: 300_000 },
  async (t) => {
    t.diagnostic(`seed ${SEED} (FC_SEED=${SEED} to replay), ${RUNS} runs`);
    let deadLettered = 0;
    let delivered = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ messages: generated, batchSize }) => {
        const messages = generated.map((g) => build(g, nextId++));
        const ids = messages.map((m) => m[ID] as number);
        const batches: FlespiMessage[][] = [];
        for (let i = 0; i < messages.length; i += batchSize) batches.push(messages.slice(i, i + batchSize));

        const output = new PassThrough();
        let stdoutText = '';
        output.setEncoding('utf8').on('data', (chunk: string) => (stdoutText += chunk));
        const deadLetters = new MemoryDeadLetterStore();
        const receiver = new Receiver({
          source: new ListSource(batches, 'adversarial messages'),
          handlers: [
            new StdoutHandler({ output }, 'stdout'),
            new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 10_000 }, 'http'),
            mqttSpec.create({ url: broker.url, topic: '{name}/{ident}', connectTimeoutMs: 3000, ackTimeoutMs: 5000 }, { resolvePath: (p) => p }, 'mqtt'),
            new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 3000, window: 16, connectTimeoutMs: 2000 }, 'wialon'),
          ],
          deadLetters,
          splitAfter: SPLIT_AFTER,
          retry: { initialMs: 5, maxMs: 40 },
          handlerTimeoutMs: 10_000,
        });
        try {
          await receiver.start();
          const explain = () =>
            `stalled: ${receiver.stats().messagesDone} of ${messages.length} messages done; ${receiver
              .stats()
              .handlers.map((h) => `${h.name}: ${h.failures} failures, last ${h.lastError ?? '-'}`)
              .join('; ')}`;
          await waitUntil(() => receiver.stats().messagesDone >= messages.length, explain, 30_000);
        } finally {
          await receiver.stop();
        }

        const letters = await deadLetters.read();
        const lettered = (sink: string, id: number) => letters.some((l) => l.handler === sink && l.message[ID] === id);
        // What MQTT accepted has its PUBACK; the subscriber may still be receiving it.
        const mqttExpected = ids.filter((id) => !lettered('mqtt', id));
        await waitUntil(
          () => (syncMqtt(), mqttExpected.every((id) => ledger.has('mqtt', id))),
          () => `MQTT subscriber is missing ${ledger.missing('mqtt', mqttExpected).join(', ')}`,
          10_000,
        );
        wialon.sync();
        ledger.add(
          'stdout',
          stdoutText
            .split('\n')
            .filter((line) => line !== '')
            .map((line) => (JSON.parse(line) as FlespiMessage)[ID] as number),
        );

        for (const sink of SINKS) {
          for (const m of messages) {
            const id = m[ID] as number;
            const got = ledger.has(sink, id);
            const dead = lettered(sink, id);
            assert.ok(
              got || dead,
              `${sink} lost message ${id}: neither delivered nor dead-lettered (${letters.length} letters: ${letters.map((l) => `${l.handler}/${String(l.message[ID])}: ${l.error}`).join('; ')})`,
            );
            if (sink !== 'wialon')
              assert.equal(
                dead,
                holdsBigInt(m),
                `${sink}: message ${id} is dead-lettered exactly when JSON cannot hold it (${letters
                  .filter((l) => l.message[ID] === id)
                  .map((l) => l.error)
                  .join('; ')})`,
              );
            if (got) delivered++;
          }
        }
        for (const letter of letters) {
          assert.ok(
            letter.attempts <= MAX_ATTEMPTS,
            `${letter.handler} dead-lettered message ${String(letter.message[ID])} after ${letter.attempts} attempts (${letter.error})`,
          );
          assert.ok(letter.error.length > 0, 'a dead letter says why');
        }
        deadLettered += letters.length;
      }),
      { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
    );
    t.diagnostic(`${delivered} deliveries, ${deadLettered} dead letters`);
  },
);
