// A slow sink must slow the receiver down, not fill its memory: with 200,000 messages waiting in
// the channel and a handler that takes 200 ms per batch, the messages fetched but not yet
// acknowledged never exceed (prefetch + 1) × limit_count, and the receiver polls flespi only as
// fast as the sink accepts batches. Whatever the slow sink accepted arrived in order, without gaps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient, type PollParams, type PollResult } from '../../src/core/flespi/client';
import { HttpHandler } from '../../src/core/handlers/http';
import { sleep } from '../../src/core/backoff';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { CHANNEL, HttpSink, Ledger, LedgerHandler, numbered, range, waitUntil } from './support';

const WAITING = 200_000;
const LIMIT_COUNT = 1000;
const SINK_MS_PER_BATCH = 200;
/** Batches the slow sink handles per case (about BATCHES × 200 ms). */
const BATCHES = 12;
const TIMEOUT = { timeout: 60_000 };

class PollCountingClient extends FlespiClient {
  polls = 0;
  override pollChannelMessages(channelId: number, params: PollParams, signal?: AbortSignal): Promise<PollResult> {
    this.polls++;
    return super.pollChannelMessages(channelId, params, signal);
  }
}

let sandbox: Sandbox;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  for (let first = 1; first <= WAITING; first += 10_000) sandbox.inject(CHANNEL, numbered(first, 10_000));
});

after(async () => {
  await sandbox?.stop();
});

for (const prefetch of [1, 3]) {
  test(
    `prefetch ${prefetch}: a sink taking ${SINK_MS_PER_BATCH} ms per batch with ${WAITING} messages waiting keeps at most ${(prefetch + 1) * LIMIT_COUNT} messages fetched but unacknowledged`,
    TIMEOUT,
    async (t) => {
      const ledger = new Ledger(['slow', 'http']);
      const http = await new HttpSink(ledger, 'http').listen();
      const slow = new LedgerHandler('slow', ledger, (_messages, ctx) => sleep(SINK_MS_PER_BATCH, ctx.signal));
      const client = new PollCountingClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
      const receiver = new Receiver({
        source: new RestSource({ client, channelId: CHANNEL, limitCount: LIMIT_COUNT, timeout: 1 }),
        handlers: [slow, new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 5000 }, 'http')],
        prefetch,
      });
      let maxUnacked = 0;
      let maxAhead = 0;
      const observe = () => {
        const s = receiver.stats();
        maxUnacked = Math.max(maxUnacked, s.messagesFetched - s.messagesDone);
        maxAhead = Math.max(maxAhead, s.batchesFetched - s.batchesDone);
      };
      receiver.on('batch', observe);
      receiver.on('done', observe);
      const heapBefore = process.memoryUsage().heapUsed;
      try {
        await receiver.start();
        await waitUntil(
          () => receiver.stats().batchesDone >= BATCHES,
          () => `only ${receiver.stats().batchesDone} batches done`,
        );
        observe();
        const { batchesDone, batchesFetched } = receiver.stats();
        const polls = client.polls;
        await receiver.stop();

        t.diagnostic(
          `${batchesDone} batches done, ${batchesFetched} fetched, ${polls} polls; most messages fetched but unacknowledged: ${maxUnacked}; heap +${Math.round((process.memoryUsage().heapUsed - heapBefore) / 1e6)} MB`,
        );
        assert.ok(maxUnacked <= (prefetch + 1) * LIMIT_COUNT, `at most ${(prefetch + 1) * LIMIT_COUNT} messages fetched but unacknowledged, saw ${maxUnacked}`);
        assert.ok(maxAhead <= prefetch + 1, `at most ${prefetch + 1} batches in the receiver, saw ${maxAhead}`);
        assert.ok(polls <= batchesDone + prefetch + 1, `polled at the sink's pace: ${polls} polls for ${batchesDone} batches done`);
        // Everything the slow sink accepted came in order without gaps, and the fast sink got exactly the same.
        const accepted = ledger.distinct('slow');
        assert.equal(accepted, ledger.total('slow'));
        assert.deepEqual(ledger.missing('slow', range(1, accepted)), []);
        assert.ok(ledger.distinct('http') >= accepted, 'the HTTP sink got every batch the slow sink accepted');
        assert.equal(ledger.duplicates('http'), 0);
      } finally {
        await receiver.stop();
        await http.close();
      }
    },
  );
}
