// Issue 11, cases 1 and 3 through the real CLI: `flespi-receiver run` reads the sandbox and forwards to
// Mosquitto (MQTT 5, a 300 kB maximum packet size) and to stdout. Device fields that no MQTT topic may
// hold (a control character, a leading `$`, 70,000 characters) and a message nested 6,000 deep used to
// stop the channel for good; now they are delivered (topics made valid, deep JSON written without
// recursion), a message the broker can never take (over its maximum packet size) ends in the
// dead-letter file with the reason, and every message after them arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlespiMessage } from '../../src/core/message';
import { quietSandbox } from '../receiver/helpers';
import { startMosquitto } from '../support/mosquitto';
import { depthOf } from '../support/rejects';
import { subscribe } from '../support/subscriber';
import { CHANNEL, ID, numbered, range, startCli, waitUntil } from './support';

const DEPTH = 6000;
const MAX_PACKET = 300_000;

test(
  "CLI run: hostile topic fields and 6,000-deep nesting reach Mosquitto and stdout; a message over the broker's maximum packet size is dead-lettered with why; the messages after them arrive",
  { timeout: 90_000 },
  async (t) => {
    const sandbox = await quietSandbox();
    const broker = await startMosquitto({ extraConfig: [`max_packet_size ${MAX_PACKET}`, 'max_queued_messages 10000'] });
    const sub = await subscribe(broker.url, '#');
    const dir = await mkdtemp(join(tmpdir(), 'sink-sanitizing-'));
    try {
      const longName = `${'n'.repeat(69_990)}-end`;
      const stored = sandbox.inject(CHANNEL, [
        ...numbered(1, 5),
        ...numbered(6, 1, { name: 'bell\u0007x' }),
        ...numbered(7, 1, { name: '$SYS' }),
        ...numbered(8, 1, { name: longName }),
        ...numbered(9, 1, { name: 'deep', deep: 'DEEP-PLACEHOLDER' }),
        ...numbered(10, 1, { name: 'huge', text: 'h'.repeat(MAX_PACKET + 100_000) }),
        ...numbered(11, 10),
      ]);
      // The sandbox writes each message with JSON.stringify, which cannot go 6,000 deep: put the text in place directly
      // (before the receiver starts), as a device's message would arrive from flespi.
      const deep = stored.find((e) => e.json.includes('"DEEP-PLACEHOLDER"'))!;
      (deep as { json: string }).json = deep.json.replace('"DEEP-PLACEHOLDER"', `${'{"level":'.repeat(DEPTH)}{"leaf":true}${'}'.repeat(DEPTH)}`);

      const config = join(dir, 'receiver.json');
      await writeFile(
        config,
        JSON.stringify({
          flespi: { baseUrl: sandbox.restUrl },
          channel: CHANNEL,
          source: { type: 'rest', limitCount: 100, timeout: 1 },
          handlers: [
            { type: 'mqtt', url: broker.url, topic: '{name}/{ident}', protocolVersion: 5, ackTimeoutMs: 5000, connectTimeoutMs: 2000 },
            { type: 'stdout' },
          ],
        }),
      );
      const run = await startCli(['run', config], { env: { FLESPI_TOKEN: sandbox.token } });
      const stdoutIds = () =>
        run
          .stdout()
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => (JSON.parse(line) as FlespiMessage)[ID]);
      try {
        await waitUntil(
          () => sub.messages.length >= 19 && stdoutIds().length >= 20 && /dead-lettered/.test(run.stderr()),
          () => `MQTT got ${sub.messages.length} of 19, stdout ${stdoutIds().length} of 20; stderr: ${run.stderr().slice(-2000)}`,
          40_000,
        );
      } finally {
        run.child.kill('SIGINT');
        await run.exit;
      }
      t.diagnostic(
        `stderr: ${run
          .stderr()
          .split('\n')
          .filter((l) => /dead-letter/.test(l))
          .join(' | ')}`,
      );

      // stdout got every message, the deep one whole.
      const lines = run
        .stdout()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as FlespiMessage);
      assert.deepEqual(
        lines.map((m) => m[ID]),
        range(1, 20),
      );
      assert.equal(depthOf(lines[8]!.deep), DEPTH);

      // MQTT got every message but the one over the broker's maximum packet size, at valid topics.
      const topicOf = new Map(sub.messages.map((m) => [(m.json as FlespiMessage)[ID], m.topic]));
      assert.deepEqual(
        [...topicOf.keys()].sort((a, b) => (a as number) - (b as number)),
        range(1, 20).filter((id) => id !== 10),
      );
      assert.equal(topicOf.get(1), 'unknown/reliability-device');
      assert.equal(topicOf.get(6), 'bell_x/reliability-device');
      assert.equal(topicOf.get(7), '_SYS/reliability-device');
      assert.match(topicOf.get(8)!, /^n+~[0-9a-f]{8}\/reliability-device$/);
      assert.equal(topicOf.get(9), 'deep/reliability-device');
      assert.equal(depthOf((sub.messages.find((m) => (m.json as FlespiMessage)[ID] === 9)!.json as FlespiMessage).deep), DEPTH);
      assert.equal(topicOf.get(20), 'unknown/reliability-device');

      // The dead-letter file (beside the checkpoint) says which handler, which message and why.
      const letters = (await readFile(join(dir, 'receiver.channel-1001.dead-letters.ndjson'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { handler: string; error: string; message: FlespiMessage });
      assert.deepEqual(
        letters.map((l) => [l.handler, l.message[ID]]),
        [['mqtt', 10]],
      );
      assert.match(
        letters[0]!.error,
        new RegExp(`^the message is \\d+ bytes as an MQTT packet; the broker at mqtt://127\\.0\\.0\\.1:\\d+ accepts at most ${MAX_PACKET}$`),
      );
    } finally {
      await sub.close();
      await broker.stop();
      await sandbox.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
