import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient } from '../../src/core/flespi/client';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox } from '../../src/sandbox/index';
import { bufferExtent, keyAtTime } from '../../src/extension/forwarding/startPosition';
import { formatLocalTime, parseStartTime } from '../../src/extension/timeInput';

test('start position: the buffer extent and the key of a time, found by key reads against the sandbox; a RestSource started there gets exactly those messages', async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1, firstKey: 7 });
  try {
    const channelId = sandbox.channels[0]!.id;
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    let reads = 0;
    const counting = { pollChannelMessages: (...args: Parameters<FlespiClient['pollChannelMessages']>) => (reads++, client.pollChannelMessages(...args)) };

    assert.deepEqual(await bufferExtent(counting, channelId), { oldestKey: 0, endKey: 0, count: 0 }, 'an empty buffer');
    // 1000 messages, server.timestamp 1000.0 s, 1000.5 s, ...: message i is at 1000 + i/2 s.
    const base = 1000;
    sandbox.inject(
      channelId,
      Array.from({ length: 1000 }, (_, i) => ({ ident: `m${i}`, 'server.timestamp': base + i / 2 })),
    );
    reads = 0;
    const extent = await bufferExtent(counting, channelId);
    assert.deepEqual(extent, { oldestKey: 7, endKey: 1007, count: 1000, oldestMs: base * 1000, newestMs: (base + 999 / 2) * 1000 });
    assert.ok(reads <= 2 * Math.ceil(Math.log2(1000)) + 2, `${reads} reads to find the end of a 1000-message buffer`);

    const from = async (key: number) => {
      const source = new RestSource({ client, channelId, startKey: key, limitCount: 3, timeout: 1 });
      await source.open(undefined);
      return (await source.next(AbortSignal.timeout(5000))).messages.map((m) => m.ident);
    };
    // 1100.2 s lies between message 200 (1100.0) and 201 (1100.5): the first at or after it is 201.
    const key = await keyAtTime(counting, channelId, (base + 100.2) * 1000, extent);
    assert.deepEqual(await from(key), ['m201', 'm202', 'm203']);
    assert.deepEqual(
      await from(await keyAtTime(counting, channelId, (base + 100) * 1000, extent)),
      ['m200', 'm201', 'm202'],
      'a message exactly at the time is included',
    );
    assert.equal(await keyAtTime(counting, channelId, 0, extent), 7, 'before the oldest: the oldest');
    assert.equal(await keyAtTime(counting, channelId, (base + 600) * 1000, extent), 1007, 'after the newest: from now');
    assert.deepEqual(await from(extent.oldestKey), ['m0', 'm1', 'm2']);
    // From the end, only what arrives afterwards.
    sandbox.inject(channelId, [{ ident: 'later' }]);
    assert.deepEqual(await from(extent.endKey), ['later']);
  } finally {
    await sandbox.stop();
  }
});

test('start position: the times a user can type', () => {
  const now = new Date(2026, 10, 26, 15, 0, 0).getTime();
  assert.equal(parseStartTime('2026-11-26 14:05', now), new Date(2026, 10, 26, 14, 5, 0).getTime());
  assert.equal(parseStartTime(' 2026-11-26T14:05:09 ', now), new Date(2026, 10, 26, 14, 5, 9).getTime());
  assert.equal(parseStartTime('2026-11-26T14:05:09Z', now), Date.UTC(2026, 10, 26, 14, 5, 9));
  assert.equal(parseStartTime('15m', now), now - 15 * 60_000);
  assert.equal(parseStartTime('2 h ago', now), now - 2 * 3_600_000);
  assert.equal(parseStartTime('1d', now), now - 86_400_000);
  for (const bad of ['', 'yesterday', '2026-02-30 10:00', '2026-11-26 25:00', '12:00']) assert.equal(parseStartTime(bad, now), undefined, bad);
  assert.equal(formatLocalTime(new Date(2026, 0, 2, 3, 4, 5).getTime()), '2026-01-02 03:04:05');
});
