import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlespiClient } from '../../src/core/flespi/client';
import type { FlespiMessage } from '../../src/core/message';
import { startSandbox } from '../../src/sandbox/index';

/** Polls channel 1001 of a sandbox until `count` messages came. */
async function collect(client: FlespiClient, channelId: number, count: number): Promise<FlespiMessage[]> {
  const messages: FlespiMessage[] = [];
  let currKey = 0;
  while (messages.length < count) {
    const batch = await client.pollChannelMessages(channelId, { currKey, timeout: 5 });
    messages.push(...batch.messages);
    currKey = batch.nextKey ?? currKey;
  }
  return messages;
}

function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Metres between two points (haversine). */
function metres(a: FlespiMessage, b: FlespiMessage): number {
  const rad = (d: number) => (d * Math.PI) / 180;
  const [lat1, lon1, lat2, lon2] = [a['position.latitude'], a['position.longitude'], b['position.latitude'], b['position.longitude']] as number[];
  const h = Math.sin(rad(lat2 - lat1) / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}

test('simulated trackers send flespi-shaped messages with plausible, consistent values', async () => {
  const sandbox = await startSandbox({ rateHz: 20, seed: 42 });
  try {
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    const messages = await collect(client, 1001, 120);
    const devices = (await client.devices('all', ['id', 'configuration'])).items;
    const registered = new Map(devices.map((d) => [(d.configuration as { ident: string }).ident, d.id]));
    const idents = new Set(messages.map((m) => m.ident as string));
    assert.equal(idents.size, 3, 'three trackers on the channel');
    let previousServerTs = 0;
    for (const m of messages) {
      const ident = m.ident as string;
      assert.match(ident, /^\d{15}$/);
      assert.ok(luhnValid(ident), `${ident} has a valid IMEI check digit`);
      assert.equal(m['channel.id'], 1001);
      assert.equal(m['protocol.id'], 16);
      assert.match(m.peer as string, /^203\.0\.113\.\d+:\d+$/);
      const serverTs = m['server.timestamp'] as number;
      assert.ok(serverTs > previousServerTs, 'server.timestamp increases');
      previousServerTs = serverTs;
      assert.ok((m.timestamp as number) < serverTs && serverTs - (m.timestamp as number) < 5, 'device time shortly before arrival');
      assert.ok(Math.abs(serverTs - Date.now() / 1000) < 60);
      const lat = m['position.latitude'] as number;
      const lon = m['position.longitude'] as number;
      assert.ok(lat > 41 && lat < 57.5 && lon > 2 && lon < 24.5, `position ${lat},${lon} in one of the cities`);
      const speed = m['position.speed'] as number;
      assert.ok(Number.isInteger(speed) && speed >= 0 && speed <= 70, `speed ${speed}`);
      assert.equal(m['movement.status'], speed > 0, 'moving exactly when the speed is above 0');
      const direction = m['position.direction'] as number;
      assert.ok(Number.isInteger(direction) && direction >= 0 && direction < 360);
      assert.ok(Number.isInteger(m['position.satellites']));
      assert.equal(typeof m['position.valid'], 'boolean');
      assert.equal(typeof m['position.hdop'], 'number');
      assert.equal(typeof m['position.altitude'], 'number');
      assert.equal(typeof m['engine.ignition.status'], 'boolean');
      assert.equal(((m.din as number) & 1) === 1, m['engine.ignition.status'], 'din bit 0 is the ignition');
      for (const name of ['battery.voltage', 'external.powersource.voltage', 'gsm.signal.level', 'gsm.mcc', 'gsm.mnc', 'gsm.lac', 'gsm.cellid']) {
        assert.equal(typeof m[name], 'number', `${name} present`);
      }
      assert.equal(m['device.id'], registered.get(ident), 'device.* only for registered idents');
    }
    assert.ok(
      [...idents].some((i) => !registered.has(i)),
      'one tracker per channel is not a registered device',
    );
    // Consecutive fixes of one tracker are no further apart than its speed allows.
    for (const ident of idents) {
      const own = messages.filter((m) => m.ident === ident);
      for (let i = 1; i < own.length; i++) {
        const a = own[i - 1] as FlespiMessage;
        const b = own[i] as FlespiMessage;
        const seconds = (b.timestamp as number) - (a.timestamp as number);
        assert.ok(seconds > 0, 'device time increases per tracker');
        assert.ok(metres(a, b) <= (70 / 3.6) * seconds + 1, `moved ${metres(a, b)} m in ${seconds} s`);
      }
    }
  } finally {
    await sandbox.stop();
  }
});

test('the same seed gives the same trackers', async () => {
  const first = await startSandbox({ simulate: false, seed: 99 });
  const second = await startSandbox({ simulate: false, seed: 99 });
  const third = await startSandbox({ simulate: false, seed: 100 });
  try {
    const identsOf = (s: typeof first) => [...s.store.devices.values()].map((d) => d.ident);
    assert.deepEqual(identsOf(first), identsOf(second));
    assert.notDeepEqual(identsOf(first), identsOf(third));
  } finally {
    await Promise.all([first.stop(), second.stop(), third.stop()]);
  }
});

test('replay: an NDJSON file is played into the channels, a bad file is refused with its line number', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sandbox-replay-'));
  try {
    const file = join(dir, 'messages.ndjson');
    const lines = [
      { ident: 'r1', 'channel.id': 1002, 'server.timestamp': 1, timestamp: 1700000000.5, 'position.speed': 5 },
      { ident: 'r2', timestamp: 1700000001 },
      { ident: 'r3', 'channel.id': 1002, timestamp: 1700000002 },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const sandbox = await startSandbox({ replayFile: file, rateHz: 50, devicesPerChannel: 1 });
    try {
      const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
      const onSecond = await collect(client, 1002, 2);
      assert.deepEqual(
        onSecond.map((m) => m.ident),
        ['r1', 'r3'],
      );
      assert.equal(onSecond[0]?.timestamp, 1700000000.5, 'device time is kept');
      assert.ok((onSecond[0]?.['server.timestamp'] as number) > 1700000000, 'server.timestamp is the replay time');
      assert.deepEqual(
        (await collect(client, 1001, 1)).map((m) => m.ident),
        ['r2'],
        'unknown channels go to the first one',
      );
    } finally {
      await sandbox.stop();
    }
    await writeFile(file, '{"ident":"ok"}\n{broken\n');
    await assert.rejects(startSandbox({ replayFile: file }), /line 2 is not JSON/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
