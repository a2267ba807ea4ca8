// The MQTT source's gap fill over REST against the sandbox: when it runs (a lost session, a session
// buffer overflow), which clock bounds it, and which messages it counts as seen (issue 12 items 4, 6, 11).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient } from '../../src/core/flespi/client';
import type { Logger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import { MqttSource, type GapFillClient, type MqttSourceOptions } from '../../src/core/sources/mqtt';
import type { SourceBatch } from '../../src/core/sources/source';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { eventually, startBroker, TOKEN } from '../sandbox/mqtt-helpers';

// One channel per test: a gap fill reads everything in its time range, other tests' messages too.
const CHANNELS = [2001, 2002, 2004, 2005];
let clientCounter = 0;

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (message) => warnings.push(message), error: (message) => warnings.push(message) };
}

function sourceFor(sandbox: Sandbox, options: Partial<MqttSourceOptions> = {}): MqttSource {
  return new MqttSource({
    url: sandbox.mqttUrl,
    token: sandbox.token,
    channelId: CHANNELS[0]!,
    clientId: `mqtt-gap-fill-test-${++clientCounter}`,
    reconnect: { initialMs: 50, maxMs: 200 },
    batchMaxWaitMs: 50,
    ...options,
  });
}

const restClient = (sandbox: Sandbox) => new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });

/** Pulls and acknowledges batches until `count` messages arrived or `withinMs` passed; returns the messages. */
async function takeWithin(source: MqttSource, count: number, withinMs = 3000): Promise<FlespiMessage[]> {
  const got: FlespiMessage[] = [];
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), withinMs);
  try {
    while (got.length < count) {
      let batch: SourceBatch;
      try {
        batch = await source.next(stop.signal);
      } catch (error) {
        if (stop.signal.aborted) break;
        throw error;
      }
      got.push(...batch.messages);
      await source.ack(batch);
    }
  } finally {
    clearTimeout(timer);
  }
  return got;
}

const tags = (messages: readonly FlespiMessage[]) => messages.map((m) => String(m.tag)).sort();

describe('MqttSource gap fill', { timeout: 30_000 }, () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({
      simulate: false,
      mqttSessionMaxBytes: 40_000,
      channels: CHANNELS.map((id) => ({ id, name: `gap-fill-${id}`, protocol: 'teltonika' })),
    });
  });
  after(() => sandbox.stop());

  /** A source whose broker session is forgotten on disconnect (expiry 0), so every reconnect needs the gap fill. */
  const forgetful = (channelId: number, client: GapFillClient, log: Logger) =>
    sourceFor(sandbox, { channelId, sessionExpirySeconds: 0, log, gapFill: { client, pageSize: 3 } });

  test('messages sharing server.timestamp and ident are all gap-filled; only the ones MQTT delivered are skipped (issue 12 item 11)', async () => {
    const log = recordingLogger();
    const CHANNEL = CHANNELS[0]!;
    const source = forgetful(CHANNEL, restClient(sandbox), log);
    await source.open(undefined);
    try {
      // Several messages parsed from one packet may carry one stamp: 3 delivered over MQTT, then 5 more during the outage.
      const stamp = Math.round(Date.now()) / 1000 + 0.123456;
      sandbox.inject(
        CHANNEL,
        [0, 1, 2].map((n) => ({ ident: 'one-packet', 'server.timestamp': stamp, tag: `seen-${n}` })),
      );
      assert.deepEqual(tags(await takeWithin(source, 3)), ['seen-0', 'seen-1', 'seen-2']);
      sandbox.faults.dropMqttClients();
      sandbox.inject(CHANNEL, [
        ...[0, 1, 2].map((n) => ({ ident: 'one-packet', 'server.timestamp': stamp, tag: `gap-same-${n}` })),
        ...[0, 1].map((n) => ({ ident: 'one-packet', 'server.timestamp': stamp + 0.5, tag: `gap-later-${n}` })),
      ]);
      const filled = await takeWithin(source, 5);
      assert.deepEqual(tags(filled), ['gap-later-0', 'gap-later-1', 'gap-same-0', 'gap-same-1', 'gap-same-2']);
      assert.equal(source.stats.gapFilled, 5);
      assert.equal(source.stats.duplicatesSkipped, 3, 'the three delivered over MQTT came back from REST and were skipped, nothing else');
    } finally {
      await source.close();
    }
  });

  test("flespi's clock ahead of ours: the gap fill reads up to the newest server.timestamp seen plus a margin, not the local now (issue 12 item 4)", async () => {
    const log = recordingLogger();
    const CHANNEL = CHANNELS[1]!;
    const source = forgetful(CHANNEL, restClient(sandbox), log);
    await source.open(undefined);
    try {
      // flespi stamps 10 minutes ahead of this machine's clock.
      const ahead = Date.now() / 1000 + 600;
      sandbox.inject(CHANNEL, [{ ident: 'ahead', 'server.timestamp': ahead, tag: 'before' }]);
      assert.deepEqual(tags(await takeWithin(source, 1)), ['before']);
      sandbox.faults.dropMqttClients();
      sandbox.inject(
        CHANNEL,
        [1, 2].map((n) => ({ ident: 'ahead', 'server.timestamp': ahead + n, tag: `gap-${n}` })),
      );
      assert.deepEqual(tags(await takeWithin(source, 2)), ['gap-1', 'gap-2']);
    } finally {
      await source.close();
    }
  });

  test("flespi's clock 20 minutes ahead of ours (the sandbox's clockOffsetMs): the gap fill reads on to the clock the REST answers' Date headers show (issue 12 item 4)", async () => {
    const skewMs = 20 * 60_000;
    const ahead = await startSandbox({ simulate: false, clockOffsetMs: skewMs });
    const log = recordingLogger();
    const source = new MqttSource({
      url: ahead.mqttUrl,
      token: ahead.token,
      channelId: 1001,
      clientId: 'clock-ahead',
      sessionExpirySeconds: 0,
      batchMaxWaitMs: 50,
      reconnect: { initialMs: 50, maxMs: 200 },
      log,
      gapFill: { client: restClient(ahead) },
    });
    await source.open(undefined);
    try {
      // flespi's now is 20 minutes past ours. The last message seen is 15 minutes old by flespi's clock
      // (a long outage), the one missed was published a second ago: past the newest stamp plus the margin.
      const flespiNow = (Date.now() + skewMs) / 1000;
      ahead.inject(1001, [{ ident: 'long-outage', 'server.timestamp': flespiNow - 900, tag: 'before' }]);
      assert.deepEqual(tags(await takeWithin(source, 1)), ['before']);
      ahead.faults.dropMqttClients();
      ahead.inject(1001, [{ ident: 'long-outage', 'server.timestamp': flespiNow - 1, tag: 'gap' }]);
      assert.deepEqual(tags(await takeWithin(source, 1)), ['gap']);
    } finally {
      await source.close();
      await ahead.stop();
    }
  });

  for (const protocolVersion of [5, 4] as const) {
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a session buffer overflow (flespi drops what was not delivered and disconnects) triggers the gap fill, although the session is kept (issue 12 item 6)`, async () => {
      const log = recordingLogger();
      // A persistent session (kept across the reconnect), a small window: the broker holds the rest back.
      const CHANNEL = CHANNELS[protocolVersion === 5 ? 2 : 3]!;
      const source = sourceFor(sandbox, { channelId: CHANNEL, protocolVersion, maxUnacked: 5, log, gapFill: { client: restClient(sandbox), pageSize: 20 } });
      await source.open(undefined);
      try {
        // 60 messages of ~1 KB: past the sandbox session's 40,000 bytes while the receiver is not acknowledging.
        const filler = 'f'.repeat(1000);
        sandbox.inject(
          CHANNEL,
          Array.from({ length: 60 }, (_, n) => ({ ident: `overflow-${protocolVersion}`, tag: `m${String(n).padStart(2, '0')}`, filler })),
        );
        const got = await takeWithin(source, 60, 5000);
        assert.deepEqual(
          [...new Set(tags(got))],
          Array.from({ length: 60 }, (_, n) => `m${String(n).padStart(2, '0')}`),
          'every message arrived, over MQTT or over REST',
        );
        assert.ok(source.stats.gapFilled > 0, `some came over REST: ${JSON.stringify(source.stats)} ${log.warnings.join('; ')}`);
        // The source stopped reading at maxUnacked, so it never reads the broker's DISCONNECT 0x97 behind
        // the messages it holds back: the connection just ends while the broker holds messages back.
        assert.ok(
          log.warnings.some((w) => /holding messages back|DISCONNECT 0x97/.test(w) && /reading them over REST/.test(w)),
          log.warnings.join('\n'),
        );
      } finally {
        await source.close();
      }
    });
  }

  test('MQTT 5 DISCONNECT 0x97 (quota exceeded) from the broker triggers the gap fill from the newest server.timestamp seen', async () => {
    // The bare sandbox broker: a window of 2 and a 600-byte session, so the source (not stalled: it
    // allows 100 unacknowledged) reads the DISCONNECT that follows the messages.
    const { broker, url } = await startBroker({ maxInflight: 2, maxSessionBytes: 600 });
    const log = recordingLogger();
    const asked: { from?: number; to?: number }[] = [];
    const client: GapFillClient = {
      channelMessages: async (_channel, params) => {
        asked.push({ from: params.from, to: params.to });
        return [];
      },
    };
    const source = new MqttSource({
      url,
      token: TOKEN,
      channelId: 9,
      clientId: 'quota-exceeded',
      protocolVersion: 5,
      maxUnacked: 100,
      batchMaxWaitMs: 20,
      reconnect: { initialMs: 20, maxMs: 50 },
      log,
      gapFill: { client },
    });
    await source.open(undefined);
    try {
      const stamp = Date.now() / 1000;
      for (let n = 0; n < 10; n++)
        broker.publish('flespi/message/gw/channels/9/dev', JSON.stringify({ ident: 'dev', 'server.timestamp': stamp + n, pad: 'p'.repeat(60) }));
      await eventually(() => asked.length > 0);
      assert.ok(
        log.warnings.some((w) => /DISCONNECT 0x97 quota exceeded/.test(w) && /reading them over REST/.test(w)),
        log.warnings.join('\n'),
      );
      const received: number[] = [];
      const signal = AbortSignal.timeout(2000);
      while (received.length === 0 || received.length < source.stats.unacked)
        received.push(...(await source.next(signal)).messages.map((m) => m['server.timestamp'] as number));
      assert.equal(asked[0]!.from, Math.max(...received), 'from the newest server.timestamp the source had received');
      assert.ok(asked[0]!.to! >= Date.now() / 1000 + 60, 'to: now plus a margin');
      assert.ok((broker.sessionInfo()[0]?.overflows ?? 0) >= 1);
    } finally {
      await source.close();
      await broker.close();
    }
  });
});
