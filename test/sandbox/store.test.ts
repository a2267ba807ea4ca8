import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxInputError, SandboxStore } from '../../src/sandbox/store';

const idents = (entries: { json: string }[]) => entries.map((e) => (JSON.parse(e.json) as { ident: string }).ident);

test('store: keys stay contiguous through deletes and compaction', () => {
  const store = new SandboxStore({ capacity: 20_000 });
  const channel = store.addChannel({ id: 1, name: 'c' });
  store.ingest(
    1,
    Array.from({ length: 12_000 }, (_, i) => ({ ident: `d${i + 1}` })),
  );
  assert.equal(channel.log.deleteBelow(2001), 2000);
  assert.equal(channel.log.firstKey, 2001);
  assert.equal(channel.log.nextKey, 12_001);
  assert.equal(channel.log.deleteBelow(9000), 6999);
  assert.deepEqual(idents(channel.log.fromKey(9000, 2, Infinity)), ['d9000', 'd9001']);
  assert.deepEqual(idents(channel.log.fromKey(1, 1, Infinity)), ['d9000'], 'a deleted key reads from the first kept one');
  assert.deepEqual(channel.log.fromKey(12_001, 10, Infinity), []);
  assert.equal(channel.log.deleteBelow(1), 0);
});

test('store: a full channel buffer blocks the channel (refuses new messages, blocked 4) instead of dropping the oldest; room again unblocks it', () => {
  for (const full of [{ capacity: 10_000 }, { channelBufferBytes: 1_000_000 }]) {
    const store = new SandboxStore(full);
    const channel = store.addChannel({ id: 1, name: 'c' });
    const changes: unknown[] = [];
    store.onBlockChange((c) => changes.push(c.item.blocked));
    const stored = store.ingest(
      1,
      Array.from({ length: 12_000 }, (_, i) => ({ ident: `d${i + 1}` })),
    );
    const kept = channel.log.size;
    if (full.capacity) assert.equal(kept, 10_000, 'the buffer holds its capacity');
    else
      assert.ok(
        channel.log.chars >= 1_000_000 && channel.log.chars < 1_000_200 && kept < 12_000,
        `the buffer filled to its size limit: ${channel.log.chars} characters in ${kept} messages`,
      );
    assert.equal(stored.length, kept);
    assert.equal(channel.log.firstKey, 1, 'the oldest message is still there');
    assert.deepEqual(idents(channel.log.fromKey(1, 1, Infinity)), ['d1']);
    assert.equal(channel.refused, 12_000 - kept, 'the rest was refused, not stored');
    assert.equal(channel.item.blocked, 4, 'the channel shows it is blocked');
    assert.deepEqual(store.ingest(1, [{ ident: 'late' }]), [], 'a blocked channel takes nothing');
    channel.log.deleteBelow(5001);
    store.expire(channel);
    assert.equal(channel.item.blocked, 0, 'deleting made room: unblocked');
    assert.equal(store.ingest(1, [{ ident: 'after' }]).length, 1);
    assert.deepEqual(changes, [4, 0]);
  }
});

test('store: stamps what the channel adds and keeps server.timestamp increasing', () => {
  const store = new SandboxStore();
  store.addChannel({ id: 7, name: 'c', protocol: 'wialon_ips' });
  store.addDevice({ id: 70, name: 'car', ident: '111', protocol: 'wialon_ips' });
  const [registered, anonymous] = store
    .ingest(7, [{ ident: '111', 'channel.id': 5 }, { ident: '222' }])
    .map((e) => JSON.parse(e.json) as Record<string, unknown>);
  assert.equal(registered?.['channel.id'], 7, 'channel.id is the channel it arrived on');
  assert.equal(registered?.['protocol.id'], 19);
  assert.equal(registered?.['device.id'], 70);
  assert.equal(registered?.['device.name'], 'car');
  assert.equal(registered?.timestamp, registered?.['server.timestamp'], 'a missing timestamp is the arrival time');
  assert.equal(anonymous?.['device.id'], undefined);
  assert.ok((anonymous?.['server.timestamp'] as number) > (registered?.['server.timestamp'] as number));
  const [kept] = store.ingest(7, [{ ident: '111', 'device.name': 'renamed', 'protocol.id': 99 }]).map((e) => JSON.parse(e.json) as Record<string, unknown>);
  assert.deepEqual([kept?.['device.name'], kept?.['protocol.id'], kept?.['device.id']], ['renamed', 99, 70], 'given parameters are kept, missing ones filled');
  assert.throws(() => store.ingest(7, [{ ident: '111' }, { ident: '111', big: 1n }]), /message 2 cannot be written as JSON/);
});

test('store: time ranges stay right when injected server.timestamps arrive out of order', () => {
  const store = new SandboxStore();
  const channel = store.addChannel({ id: 1, name: 'c' });
  store.ingest(
    1,
    [30, 10, 20, 40].map((t) => ({ ident: `t${t}`, 'server.timestamp': t })),
  );
  const query = { from: 15, to: 35, count: 10, reverse: false };
  assert.deepEqual(idents(channel.log.byServerTime(query)), ['t20', 't30']);
  assert.deepEqual(idents(channel.log.byServerTime({ ...query, reverse: true, count: 1 })), ['t30']);
});

test('store: a device log is ordered by device time, late messages in place; an equal timestamp merges into one message as flespi does', () => {
  const store = new SandboxStore();
  const channel = store.addChannel({ id: 1, name: 'c' });
  const device = store.addDevice({ id: 9, name: 'd', ident: 'dev', protocol: 'teltonika' });
  store.ingest(
    1,
    [5, 1, 3, 3, 9].map((ts, i) => ({ ident: 'dev', timestamp: ts, n: i, [`only${i}`]: true })),
  );
  const all = device.log.byDeviceTime({ from: 0, to: Infinity, count: 100, reverse: false }).map((e) => JSON.parse(e.json) as Record<string, unknown>);
  assert.deepEqual(
    all.map((m) => [m.timestamp, m.n]),
    [
      [1, 1],
      [3, 3],
      [5, 0],
      [9, 4],
    ],
    'one message at timestamp 3, the newer values winning',
  );
  assert.equal(all[1]?.only2, true, 'the merged message keeps the parameters of the first');
  assert.equal(all[1]?.only3, true, 'and has those of the second');
  assert.equal(channel.log.size, 5, 'the channel buffer keeps both messages');
});

test('store: TTL drops messages stored longer ago than messages_ttl', () => {
  const store = new SandboxStore({ channelMessagesTtl: 60 });
  const channel = store.addChannel({ id: 1, name: 'c' });
  store.ingest(1, [{ ident: 'a' }, { ident: 'b' }]);
  channel.log.expire(Date.now() + 30_000);
  assert.equal(channel.log.size, 2);
  channel.log.expire(Date.now() + 61_000);
  assert.equal(channel.log.size, 0);
  assert.equal(channel.log.firstKey, 3, 'keys go on after expiry');
});

test('store: bad input is refused with a message that says what to send', () => {
  const store = new SandboxStore();
  store.addChannel({ id: 1, name: 'c' });
  assert.throws(
    () => store.ingest(1, ['text']),
    (e: unknown) => e instanceof SandboxInputError && /message 1 is not a JSON object/.test(e.message),
  );
  assert.throws(() => store.ingest(1, [{ ident: 'x', timestamp: 'now' }]), /non-numeric "timestamp"/);
  assert.throws(
    () => store.ingest(2, []),
    (e: unknown) => e instanceof SandboxInputError && e.status === 404,
  );
  assert.throws(() => store.addChannel({ id: 3, name: 'x', protocol: 'morse' }), /unknown protocol "morse".*teltonika/);
  assert.throws(() => store.addChannel({ id: 1, name: 'again' }), /exists already/);
});
