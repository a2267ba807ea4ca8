// fillGap against answers the sandbox never gives (test/support/fakeFlespi.ts): more messages on one
// server.timestamp than the largest page, a gap holding exactly `newest` messages, and the exact
// range and page size asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient } from '../../src/core/flespi/client';
import { fillGap, GAP_FILL_MARGIN_S } from '../../src/core/flespi/subscription';
import { startFakeFlespi } from '../support/fakeFlespi';
import { memoryLogger } from '../support/logger';

const PATH = '/gw/channels/5/messages';

test('a full page that does not get past its timestamp is asked again 4 times larger, up to 100,000; past that the fill stops with a warning', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  // Every message of the channel has server.timestamp 1000: a page never gets past it.
  server.on('GET', PATH, (request) => ({
    body: { result: Array.from({ length: Number(request.data?.count) }, (_, i) => ({ ident: 'same', 'server.timestamp': 1000, i })) },
  }));
  const log = memoryLogger();
  let added = 0;
  const result = await fillGap({
    client: new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url }),
    channelId: 5,
    from: 1000,
    pageSize: 6000,
    log,
    onMessages: (messages) => (added += messages.length),
  });
  assert.deepEqual(
    server.requestsTo('GET', PATH).map((r) => r.data?.count),
    [6000, 24_000, 96_000, 100_000],
  );
  assert.deepEqual(result, { added: 100_000, skipped: 0, capped: false });
  assert.equal(added, 100_000);
  assert.deepEqual(log.at('warn'), [
    `the gap fill over REST stopped at ${new Date(1000 * 1000).toISOString()}: more than 100000 messages share that server.timestamp`,
  ]);
});

test('after a page grown past a crowded timestamp, paging goes on from the last timestamp with the page size again; the range ends at flespi now + 300 s; a short page ends the fill', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  const stamps = [10, 10, 10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  server.on('GET', PATH, (request) => {
    const { from, count } = request.data as { from: number; count: number };
    return {
      body: {
        result: stamps
          .map((s, i) => ({ ident: 'x', 'server.timestamp': s, i }))
          .filter((m) => m['server.timestamp'] >= from)
          .slice(0, count),
      },
    };
  });
  const seen: number[] = [];
  const before = Date.now() / 1000;
  const result = await fillGap({
    client: new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url }),
    channelId: 5,
    from: 10,
    pageSize: 3,
    onMessages: (messages) => seen.push(...messages.map((m) => m.i as number)),
  });
  assert.deepEqual(
    seen,
    stamps.map((_, i) => i),
    'each once, oldest first',
  );
  assert.deepEqual(result, { added: 15, skipped: 0, capped: false });
  const asked = server.requestsTo('GET', PATH).map((r) => r.data as { from: number; count: number; to: number });
  // Three of 10 (full, stuck): 12 from 10, which gets to 18; then 3 from 18, 3 from 20 (short: the end).
  assert.deepEqual(
    asked.map((a) => [a.from, a.count]),
    [
      [10, 3],
      [10, 12],
      [18, 3],
      [20, 3],
    ],
  );
  for (const a of asked) assert.ok(a.to >= before + GAP_FILL_MARGIN_S && a.to <= Date.now() / 1000 + GAP_FILL_MARGIN_S + 1, `to ${a.to}`);
});

test('with newest: a gap holding exactly `newest` messages is reported as capped; one fewer is not', async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  const messages = [1, 2, 3].map((i) => ({ ident: 'x', 'server.timestamp': 100 + i, i }));
  server.on('GET', PATH, (request) => {
    const { count, reverse } = request.data as { count: number; reverse: boolean };
    assert.equal(reverse, true);
    return { body: { result: [...messages].reverse().slice(0, count) } };
  });
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  const read = (newest: number) => fillGap({ client, channelId: 5, from: 100, newest, onMessages: () => {} });
  assert.deepEqual(await read(3), { added: 3, skipped: 0, capped: true });
  assert.deepEqual(await read(4), { added: 3, skipped: 0, capped: false });
});
