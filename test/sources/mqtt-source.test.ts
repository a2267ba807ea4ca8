import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import type { Logger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import { channelTopic } from '../../src/core/flespi/subscription';
import { MqttSource, type MqttConnectionState, type MqttSourceOptions } from '../../src/core/sources/mqtt';
import type { SourceBatch } from '../../src/core/sources/source';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { eventually, startBroker, TOKEN } from '../sandbox/mqtt-helpers';

const CHANNEL = 1001;
let clientCounter = 0;

/** A source on the sandbox with a fresh client id (so tests do not share broker sessions). */
function sourceFor(sandbox: Sandbox, options: Partial<MqttSourceOptions> = {}): MqttSource {
  return new MqttSource({
    url: sandbox.mqttUrl,
    token: sandbox.token,
    channelId: CHANNEL,
    clientId: `mqtt-source-test-${++clientCounter}`,
    reconnect: { initialMs: 50, maxMs: 200 },
    ...options,
  });
}

function messages(count: number, tag: string): FlespiMessage[] {
  return Array.from({ length: count }, (_, n) => ({ ident: `dev-${n % 3}`, tag, n }));
}

function tagsOf(batch: SourceBatch): string[] {
  return batch.messages.map((m) => `${String(m.tag)}:${String(m.n)}`);
}

const expectedTags = (count: number, tag: string) => Array.from({ length: count }, (_, n) => `${tag}:${n}`);

/** Pulls batches (acknowledging each) until `count` messages arrived; returns the batches. */
async function take(source: MqttSource, count: number, { ack = true } = {}): Promise<SourceBatch[]> {
  const batches: SourceBatch[] = [];
  let got = 0;
  const signal = new AbortController().signal;
  while (got < count) {
    const batch = await source.next(signal);
    batches.push(batch);
    got += batch.messages.length;
    if (ack) await source.ack(batch);
  }
  return batches;
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (message) => warnings.push(message), error: (message) => warnings.push(message) };
}

// The timeout only guards against a hang; nothing here is timed.
describe('MqttSource', { timeout: 30_000 }, () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({ simulate: false });
  });
  after(() => sandbox.stop());

  test('builds the subscription from group and filter', () => {
    assert.equal(channelTopic(7), 'flespi/message/gw/channels/7/+');
    assert.equal(
      channelTopic(7, { group: 'workers', filter: 'position.speed>60' }),
      '$share/workers/$filter/payload=position.speed%3E60/flespi/message/gw/channels/7/+',
    );
  });

  test('delivers messages in order, in batches of at most batchMaxMessages', async () => {
    const source = sourceFor(sandbox, { batchMaxMessages: 10, batchMaxWaitMs: 1000 });
    await source.open(undefined);
    try {
      sandbox.inject(CHANNEL, messages(25, 'batch'));
      const batches = await take(source, 25);
      assert.deepEqual(batches.flatMap(tagsOf), expectedTags(25, 'batch'));
      assert.ok(
        batches.every((b) => b.messages.length <= 10),
        `batch sizes ${batches.map((b) => b.messages.length).join(',')}`,
      );
      assert.ok(batches.length < 25, 'messages were grouped');
      assert.deepEqual(
        batches.map((b) => b.seq),
        batches.map((_, i) => i + 1),
      );
      assert.equal(source.checkpointAfter(batches[0]), undefined);
      assert.equal(batches[0].messages[0]['channel.id'], CHANNEL);
      assert.equal(source.stats.unacked, 0);
    } finally {
      await source.close();
    }
  });

  test('a batch not acknowledged before the connection drops comes again after the reconnect; acknowledged ones do not', async () => {
    const states: string[] = [];
    const source = sourceFor(sandbox, { batchMaxWaitMs: 100, onState: (state: MqttConnectionState) => states.push(state) });
    await source.open(undefined);
    try {
      sandbox.inject(CHANNEL, messages(3, 'acked'));
      await take(source, 3);
      sandbox.inject(CHANNEL, messages(5, 'unacked'));
      const pending = await take(source, 5, { ack: false });
      assert.deepEqual(pending.flatMap(tagsOf), expectedTags(5, 'unacked'));
      assert.equal(source.stats.unacked, 5);

      sandbox.faults.dropMqttClients();
      const again = await take(source, 5);
      assert.deepEqual(again.flatMap(tagsOf), expectedTags(5, 'unacked'));
      assert.equal(source.stats.redelivered, 5);
      for (const batch of pending) await source.ack(batch); // late: their connection is gone, so this must not acknowledge anything now

      sandbox.inject(CHANNEL, messages(1, 'after'));
      const [next] = await take(source, 1);
      assert.deepEqual(tagsOf(next), ['after:0'], 'the acknowledged messages were not sent again');
      assert.deepEqual(states.slice(0, 5), ['connecting', 'connected', 'reconnecting', 'connecting', 'connected']);
      assert.equal(source.stats.reconnects, 1);
    } finally {
      await source.close();
    }
    assert.equal(source.state, 'offline');
  });

  test('messages left unacknowledged at close wait in the broker session for the next run', async () => {
    const clientId = `mqtt-source-restart-${++clientCounter}`;
    const first = sourceFor(sandbox, { clientId, batchMaxWaitMs: 50 });
    await first.open(undefined);
    sandbox.inject(CHANNEL, messages(4, 'restart'));
    await take(first, 4, { ack: false });
    await first.close();
    sandbox.inject(CHANNEL, messages(2, 'offline'));

    const second = sourceFor(sandbox, { clientId, batchMaxWaitMs: 50 });
    await second.open(undefined);
    try {
      const batches = await take(second, 6);
      assert.deepEqual(batches.flatMap(tagsOf), [...expectedTags(4, 'restart'), ...expectedTags(2, 'offline')]);
    } finally {
      await second.close();
    }
  });

  test('two sources in one $share group split the stream; when one closes the other takes over its unacknowledged messages', async () => {
    const a = sourceFor(sandbox, { group: 'split', batchMaxWaitMs: 50 });
    const b = sourceFor(sandbox, { group: 'split', batchMaxWaitMs: 50 });
    await a.open(undefined);
    await b.open(undefined);
    try {
      sandbox.inject(CHANNEL, messages(40, 'shared'));
      const seen = new Map<string, string>();
      const pull = async (source: MqttSource, name: string, signal: AbortSignal) => {
        for (;;) {
          const batch = await source.next(signal);
          for (const tag of tagsOf(batch)) {
            assert.equal(seen.has(tag), false, `${tag} delivered twice`);
            seen.set(tag, name);
          }
          await source.ack(batch);
        }
      };
      const stop = new AbortController();
      const pulling = [pull(a, 'a', stop.signal), pull(b, 'b', stop.signal)].map((p) =>
        p.catch((error: unknown) => (stop.signal.aborted ? undefined : Promise.reject(error))),
      );
      await eventually(() => seen.size === 40);
      stop.abort();
      await Promise.all(pulling);
      assert.deepEqual([...seen.keys()].sort(), expectedTags(40, 'shared').sort());
      const byA = [...seen.values()].filter((name) => name === 'a').length;
      assert.ok(byA > 0 && byA < 40, `both members got part of the stream (a: ${byA}, b: ${40 - byA})`);

      // a takes its share and closes without acknowledging: b gets those messages too.
      sandbox.inject(CHANNEL, messages(10, 'takeover'));
      const takenByA = (await take(a, 5, { ack: false })).flatMap(tagsOf);
      const takenByB = (await take(b, 5)).flatMap(tagsOf);
      assert.deepEqual([...takenByA, ...takenByB].sort(), expectedTags(10, 'takeover').sort());
      await a.close();
      const rerouted = (await take(b, takenByA.length)).flatMap(tagsOf);
      assert.deepEqual(rerouted.sort(), takenByA.sort());
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('the broker filters with $filter/payload=', async () => {
    const source = sourceFor(sandbox, { filter: 'n>=3 && tag=="filtered"', batchMaxWaitMs: 50 });
    await source.open(undefined);
    try {
      sandbox.inject(CHANNEL, [...messages(2, 'other'), ...messages(5, 'filtered')]);
      const batches = await take(source, 2);
      assert.deepEqual(batches.flatMap(tagsOf), ['filtered:3', 'filtered:4']);
    } finally {
      await source.close();
    }
  });

  test('after a reconnect that lost the session, fills the gap over REST without repeating what MQTT delivered', async () => {
    const log = recordingLogger();
    // Session expiry 0: the broker forgets the session on disconnect, so messages published meanwhile are lost to MQTT.
    const source = sourceFor(sandbox, {
      sessionExpirySeconds: 0,
      batchMaxWaitMs: 50,
      log,
      gapFill: { client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }), pageSize: 3 },
    });
    await source.open(undefined);
    try {
      sandbox.inject(CHANNEL, messages(3, 'before'));
      await take(source, 3);
      sandbox.faults.dropMqttClients();
      sandbox.inject(CHANNEL, messages(4, 'gap'));
      const filled = await take(source, 4);
      assert.deepEqual(filled.flatMap(tagsOf).sort(), expectedTags(4, 'gap').sort());
      assert.equal(source.stats.gapFilled, 4);
      assert.ok(source.stats.duplicatesSkipped >= 1, 'the last message seen over MQTT came back from REST and was skipped');
      assert.ok(log.warnings.some((w) => w.includes('did not keep the session')));
    } finally {
      await source.close();
    }
  });

  describe('refusals', () => {
    test('a wrong token: open() rejects with an auth error naming the CONNACK code (MQTT 5: 134, 3.1.1: 2 "identifier rejected", as flespi answers)', async () => {
      for (const [protocolVersion, code] of [
        [5, 134],
        [4, 2],
      ] as const) {
        const states: string[] = [];
        const source = sourceFor(sandbox, { token: 'not-the-token', protocolVersion, onState: (state) => states.push(state) });
        await assert.rejects(source.open(undefined), (error: unknown) => {
          assert.ok(error instanceof FlespiError);
          assert.equal(error.kind, 'auth');
          assert.equal(error.retryable, false);
          assert.match(error.message, new RegExp(`flespi MQTT refused the token \\(CONNACK ${code}\\b.*check the token`));
          assert.doesNotMatch(error.message, /not-the-token/);
          return true;
        });
        assert.deepEqual(states, ['connecting', 'offline']);
        await source.close();
      }
    });

    test('a blocked token is "forbidden" (CONNACK 138)', async () => {
      const blocked = 'K'.repeat(64);
      sandbox.addToken(blocked, { blocked: true });
      const source = sourceFor(sandbox, { token: blocked });
      await assert.rejects(
        source.open(undefined),
        (error: unknown) => error instanceof FlespiError && error.kind === 'forbidden' && /CONNACK 138/.test(error.message),
      );
      await source.close();
    });

    test('MQTT 3.1.1: CONNACK 5 "not authorized" (the sandbox\'s answer to a blocked token) is an auth error too', async () => {
      const blocked = 'J'.repeat(64);
      sandbox.addToken(blocked, { blocked: true });
      const source = sourceFor(sandbox, { token: blocked, protocolVersion: 4 });
      await assert.rejects(
        source.open(undefined),
        (error: unknown) => error instanceof FlespiError && error.kind === 'auth' && !error.retryable && /refused the token \(CONNACK 5\)/.test(error.message),
      );
      await source.close();
    });

    test('an unreachable broker is a retryable network error', async () => {
      const { broker, url } = await startBroker();
      await broker.close(); // the port is now closed
      const source = new MqttSource({ url, token: TOKEN, channelId: CHANNEL });
      await assert.rejects(
        source.open(undefined),
        (error: unknown) => error instanceof FlespiError && error.kind === 'network' && error.retryable && error.message.includes(url),
      );
      await source.close();
    });
  });

  test('malformed payloads are logged with their topic, counted and acknowledged, not handed out', async () => {
    const { broker, url } = await startBroker();
    const log = recordingLogger();
    const source = new MqttSource({ url, token: TOKEN, channelId: 5, clientId: 'malformed-check', batchMaxWaitMs: 50, log });
    await source.open(undefined);
    try {
      broker.publish('flespi/message/gw/channels/5/dev', 'not json');
      broker.publish('flespi/message/gw/channels/5/dev', '[1,2]');
      broker.publish('flespi/message/gw/channels/5/dev', JSON.stringify({ ident: 'dev', ok: true }));
      const [batch] = await take(source, 1);
      assert.deepEqual(batch.messages, [{ ident: 'dev', ok: true }]);
      assert.equal(source.stats.malformed, 2);
      assert.equal(log.warnings.length, 2);
      assert.ok(log.warnings.every((w) => w.includes('flespi/message/gw/channels/5/dev')));
      assert.match(log.warnings[0], /not JSON/);
      assert.match(log.warnings[1], /JSON array, not a message object/);
      await eventually(() => broker.sessionInfo().find((s) => s.clientId === 'malformed-check')?.inflight === 0);
    } finally {
      await source.close();
      await broker.close();
    }
  });

  for (const protocolVersion of [5, 4] as const) {
    test(`never holds more than maxUnacked messages unacknowledged (MQTT ${protocolVersion === 5 ? '5: Receive Maximum' : '3.1.1: stops reading'})`, async () => {
      const source = sourceFor(sandbox, { protocolVersion, maxUnacked: 4, batchMaxWaitMs: 20 });
      await source.open(undefined);
      try {
        sandbox.inject(CHANNEL, messages(20, `bounded-${protocolVersion}`));
        const signal = new AbortController().signal;
        const got: string[] = [];
        let mostUnacked = 0;
        while (got.length < 20) {
          const batch = await source.next(signal);
          got.push(...tagsOf(batch));
          mostUnacked = Math.max(mostUnacked, source.stats.unacked);
          await source.ack(batch);
        }
        assert.deepEqual(got, expectedTags(20, `bounded-${protocolVersion}`));
        assert.ok(mostUnacked <= 4, `at most 4 unacknowledged, saw ${mostUnacked}`);
        assert.ok(mostUnacked > 0);
      } finally {
        await source.close();
      }
    });
  }

  test('an absurd reconnect delay is clamped to what a timer can wait, never a 1 ms busy loop', async () => {
    // 2^40 ms is past Node's timer limit (2^31-1): unclamped, Node waits 1 ms instead and the source reconnects at once.
    const source = sourceFor(sandbox, { reconnect: { initialMs: 2 ** 40, maxMs: 2 ** 41 } });
    await source.open(undefined);
    try {
      sandbox.faults.dropMqttClients();
      await eventually(() => source.state === 'reconnecting');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(source.stats.reconnects, 0);
      assert.equal(source.state, 'reconnecting');
    } finally {
      await source.close();
    }
  });

  test('with MQTT 3.1.1 too, unacknowledged messages come back after a reconnect', async () => {
    const source = sourceFor(sandbox, { protocolVersion: 4, batchMaxWaitMs: 50 });
    await source.open(undefined);
    try {
      sandbox.inject(CHANNEL, messages(3, 'v3'));
      await take(source, 3, { ack: false });
      sandbox.faults.dropMqttClients();
      const again = await take(source, 3);
      assert.deepEqual(again.flatMap(tagsOf), expectedTags(3, 'v3'));
    } finally {
      await source.close();
    }
  });
});
