// Oversized and odd messages are forwarded or rejected by documented rules, never silently dropped.
//
// Rules (docs/reliability.md, docs/wialon.md): stdout, HTTP and MQTT forward every message as JSON,
// whatever it holds; a topic field the message lacks becomes "unknown". Wialon sends what it can
// encode (objects become JSON text) and rejects messages without a usable ident (printable ASCII) or
// timestamp (ctx.reject): the receiver records them in the dead-letter store with the reason, the
// handler logs the first and counts all of them in health().
//
// Deep nesting, 1 MB strings and non-ASCII idents come through the sandbox like any flespi message.
// The sandbox (like flespi) refuses messages without an ident and stamps a missing timestamp, so
// those two come from a plain in-memory Source instead.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { FlespiClient } from '../../src/core/flespi/client';
import type { Handler } from '../../src/core/handler';
import { HttpHandler } from '../../src/core/handlers/http';
import { mqttSpec } from '../../src/core/handlers/mqtt';
import { StdoutHandler } from '../../src/core/handlers/stdout';
import { WialonHandler } from '../../src/core/handlers/wialon';
import type { FlespiMessage } from '../../src/core/message';
import { MemoryDeadLetterStore } from '../../src/core/receiver/deadLetters';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { findBlock } from '../../src/core/wialon/codec';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { ListSource } from '../support/listSource';
import { memoryLogger, type MemoryLogger } from '../support/logger';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto';
import { subscribe, type Subscriber } from '../support/subscriber';
import { CHANNEL, HttpSink, ID, Ledger, WialonSink, idsOf, waitUntil } from './support';

const TIMEOUT = { timeout: 60_000 };
const NESTING = 500;
const LONG = 1024 * 1024;
const SINKS = ['stdout', 'http', 'mqtt', 'wialon'] as const;

function nested(depth: number): unknown {
  let value: unknown = { leaf: true };
  for (let i = 0; i < depth; i++) value = { level: value };
  return value;
}

function depthOf(value: unknown): number {
  let depth = 0;
  while (typeof value === 'object' && value !== null && 'level' in value) {
    value = (value as { level: unknown }).level;
    depth++;
  }
  return depth;
}

let sandbox: Sandbox;
let broker: RunningMosquitto;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  broker = await startMosquitto();
});

after(async () => {
  await broker?.stop();
  await sandbox?.stop();
});

interface Sinks {
  ledger: Ledger;
  handlers: Handler[];
  wialonHandler: WialonHandler;
  wialon: WialonSink;
  http: HttpSink;
  subscriber: Subscriber;
  /** Every line the stdout handler wrote, parsed. */
  stdout: FlespiMessage[];
  log: MemoryLogger;
  /** Moves what the sinks got into the ledger. */
  sync(): void;
  close(): Promise<void>;
}

async function sinks(topicRoot: string): Promise<Sinks> {
  const ledger = new Ledger(SINKS);
  const http = await new HttpSink(ledger, 'http').listen();
  const wialon = await new WialonSink(ledger, 'wialon').listen();
  const subscriber = await subscribe(broker.url, `${topicRoot}/#`);
  const output = new PassThrough();
  const stdout: FlespiMessage[] = [];
  let text = '';
  output.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    const lines = text.split('\n');
    text = lines.pop()!;
    for (const line of lines) stdout.push(JSON.parse(line) as FlespiMessage);
  });
  const wialonHandler = new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 5000, window: 16, connectTimeoutMs: 2000 }, 'wialon');
  const handlers = [
    new StdoutHandler({ output }, 'stdout'),
    new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 10_000 }, 'http'),
    mqttSpec.create({ url: broker.url, topic: `${topicRoot}/{ident}` }, { resolvePath: (p) => p }, 'mqtt'),
    wialonHandler,
  ];
  let mqttSynced = 0;
  let stdoutSynced = 0;
  return {
    ledger,
    handlers,
    wialonHandler,
    wialon,
    http,
    subscriber,
    stdout,
    log: memoryLogger(),
    sync() {
      wialon.sync();
      ledger.add('mqtt', idsOf(subscriber.messages.slice(mqttSynced).map((m) => m.json as FlespiMessage)));
      mqttSynced = subscriber.messages.length;
      ledger.add('stdout', idsOf(stdout.slice(stdoutSynced)));
      stdoutSynced = stdout.length;
    },
    async close() {
      await Promise.all([http.close(), wialon.close(), subscriber.close()]);
    },
  };
}

test(
  `deep nesting (${NESTING} levels), a 1 MB string and non-ASCII idents: stdout, HTTP and MQTT forward them intact; Wialon sends what it can encode and counts the idents it cannot`,
  TIMEOUT,
  async (t) => {
    const s = await sinks('odd');
    const odd: FlespiMessage[] = [
      { ident: 'deep-1', [ID]: 1, deep: nested(NESTING) },
      { ident: 'long-2', [ID]: 2, 'long.text': 'ж'.repeat(LONG / 2) }, // 1 MB of UTF-8
      { ident: 'датчик-№3', [ID]: 3 },
      { ident: '🚚-4', [ID]: 4 },
      { ident: 'plain-5', [ID]: 5 },
    ];
    sandbox.inject(CHANNEL, odd);
    const deadLetters = new MemoryDeadLetterStore();
    const receiver = new Receiver({
      source: new RestSource({ client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }), channelId: CHANNEL, limitCount: 2, timeout: 1 }),
      handlers: s.handlers,
      log: s.log,
      deadLetters,
    });
    try {
      await receiver.start();
      await waitUntil(
        () => receiver.stats().messagesDone >= odd.length,
        () =>
          `${receiver.stats().messagesDone} of ${odd.length} done; handler errors: ${receiver
            .stats()
            .handlers.map((h) => h.lastError)
            .join('; ')}`,
      );
      await s.subscriber.waitForCount(odd.length); // the broker acknowledged them; the subscriber may lag a little
      s.sync();
      const all = [1, 2, 3, 4, 5];
      const encodable = [1, 2, 5];
      t.diagnostic(s.ledger.summary(all));
      for (const sink of ['stdout', 'http', 'mqtt']) assert.deepEqual(s.ledger.missing(sink, all), [], `${sink} forwards every message`);
      assert.deepEqual(s.ledger.missing('wialon', encodable), [], 'Wialon sends the encodable ones');
      assert.deepEqual(s.ledger.ids('wialon').sort(), encodable, 'and only those');

      // Intact: the nesting, the long text and the idents survive JSON forwarding.
      const byId = (list: FlespiMessage[]) => new Map(list.map((m) => [m[ID] as number, m]));
      for (const [sink, messages] of [
        ['stdout', s.stdout],
        ['mqtt', s.subscriber.messages.map((m) => m.json as FlespiMessage)],
      ] as const) {
        const got = byId(messages);
        assert.equal(depthOf(got.get(1)!.deep), NESTING, `${sink}: nesting`);
        assert.equal(got.get(2)!['long.text'], odd[1]!['long.text'], `${sink}: the 1 MB string`);
        assert.equal(got.get(3)!.ident, 'датчик-№3', `${sink}: Cyrillic ident`);
        assert.equal(got.get(4)!.ident, '🚚-4', `${sink}: emoji ident`);
      }
      assert.ok(
        s.subscriber.messages.some((m) => m.topic === 'odd/датчик-№3'),
        'MQTT topics carry non-ASCII idents as UTF-8',
      );
      assert.ok(s.http.batches.flat().length >= 5);

      // Wialon: the nested object went out as JSON text; the two non-ASCII idents are dead-lettered with why, logged and counted.
      const letters = await deadLetters.read();
      assert.deepEqual(
        letters.map((l) => [l.handler, l.message[ID]]),
        [
          ['wialon', 3],
          ['wialon', 4],
        ],
        'only Wialon dead-letters, and only those two',
      );
      for (const letter of letters) assert.match(letter.error, /^the message cannot be sent to Wialon: "ident" .* has characters outside printable ASCII/);
      assert.equal(s.wialonHandler.stats.messagesSkipped, 2);
      assert.match(s.wialonHandler.health().detail ?? '', /2 messages rejected as unsendable \(no ident\/timestamp, or too large\)/);
      assert.equal(
        s.log.at('warn').filter((w) => /wialon: the message cannot be sent to Wialon/.test(w)).length,
        1,
        "the first rejection is the handler's warning; the rest are counted",
      );
      assert.ok(s.wialonHandler.stats.parameterIssues >= 1, 'the nested object was reported as converted to JSON text');
    } finally {
      await receiver.stop();
      await s.close();
    }
  },
);

test(
  'messages without ident or timestamp: stdout, HTTP and MQTT forward them (topic field "unknown"); Wialon dead-letters them with the reason, logs once and counts them in health()',
  TIMEOUT,
  async (t) => {
    const s = await sinks('bare');
    const bare: FlespiMessage[] = [
      { [ID]: 11, timestamp: 1_700_000_000 },
      { ident: 'no-time-12', [ID]: 12 },
      { ident: 'fine-13', [ID]: 13, timestamp: 1_700_000_001 },
    ];
    const deadLetters = new MemoryDeadLetterStore();
    const receiver = new Receiver({ source: new ListSource([bare.slice(0, 2), bare.slice(2)]), handlers: s.handlers, log: s.log, deadLetters });
    try {
      await receiver.start();
      await waitUntil(
        () => receiver.stats().messagesDone >= 3,
        () => `${receiver.stats().messagesDone} of 3 done`,
      );
      await s.subscriber.waitForCount(3);
      s.sync();
      const all = [11, 12, 13];
      t.diagnostic(s.ledger.summary(all));
      for (const sink of ['stdout', 'http', 'mqtt']) assert.deepEqual(s.ledger.missing(sink, all), [], `${sink} forwards every message`);
      assert.deepEqual(s.ledger.ids('wialon'), [13]);
      assert.ok(
        s.subscriber.messages.some((m) => m.topic === 'bare/unknown' && (m.json as FlespiMessage)[ID] === 11),
        'the message without ident is published under .../unknown',
      );
      assert.equal(s.wialonHandler.stats.messagesSkipped, 2);
      assert.match(s.wialonHandler.health().detail ?? '', /2 messages rejected as unsendable/);
      assert.deepEqual(
        (await deadLetters.read()).map((l) => [l.handler, l.message[ID], l.error]),
        [
          ['wialon', 11, 'the message cannot be sent to Wialon: message has no "ident": Wialon needs it as the unit ID, so the message cannot be sent'],
          ['wialon', 12, 'the message cannot be sent to Wialon: message has no "timestamp": Wialon needs the message time, so the message cannot be sent'],
        ],
      );
      const warnings = s.log.at('warn').filter((w) => /wialon: the message cannot be sent to Wialon/.test(w));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /ident/);
      assert.equal(receiver.stats().handlers.find((h) => h.name === 'wialon')!.failures, 0, 'a rejected message is not a failure: the channel does not stall');
    } finally {
      await receiver.stop();
      await s.close();
    }
  },
);

test('Wialon gets the nested object as JSON text and the 1 MB string whole', TIMEOUT, async () => {
  const ledger = new Ledger(['wialon']);
  const wialon = await new WialonSink(ledger, 'wialon').listen();
  const handler = new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 5000, window: 16, connectTimeoutMs: 2000 }, 'wialon');
  const text = 'ж'.repeat(LONG / 2);
  const receiver = new Receiver({
    source: new ListSource([[{ ident: 'w-1', timestamp: 1_700_000_000, [ID]: 21, deep: nested(NESTING), 'long.text': text }]]),
    handlers: [handler],
  });
  try {
    await receiver.start();
    await waitUntil(
      () => receiver.stats().messagesDone >= 1,
      () => 'not delivered',
    );
    const [packet] = wialon.receiver.packets;
    assert.ok(packet);
    const deep = findBlock(packet, 'deep');
    assert.equal(deep?.type, 'text');
    assert.equal(depthOf(JSON.parse(deep!.value as string)), NESTING);
    const long = findBlock(packet, 'long.text');
    assert.equal(long?.type, 'text');
    assert.equal(long!.value, text);
  } finally {
    await receiver.stop();
    await wialon.close();
  }
});
