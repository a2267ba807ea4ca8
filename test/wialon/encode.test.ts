import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WialonEncodeError,
  decodePacket,
  encodeMessage,
  encodePacket,
  findBlock,
  shortName,
  type EncodeIssue,
  type WialonBlock,
  type WialonPacket,
} from '../../src/core/wialon/codec';
import type { FlespiMessage } from '../../src/core/message';
import { vector } from './support';

const BASE = { ident: '352625333222111', timestamp: 1700000000 };

/** Encodes, then decodes with the strict decoder; returns the packet and every reported issue. */
function roundTrip(message: FlespiMessage): { packet: WialonPacket; issues: EncodeIssue[]; bytes: Buffer } {
  const issues: EncodeIssue[] = [];
  const bytes = encodeMessage(message, { onIssue: (issue) => issues.push(issue) });
  return { packet: decodePacket(bytes), issues, bytes };
}

function block(message: FlespiMessage, name: string): WialonBlock | undefined {
  return findBlock(roundTrip(message).packet, name);
}

test('a flespi message equivalent to S1v encodes to exactly the bytes of S1v', () => {
  const message = {
    ident: 'unit-2',
    timestamp: 1700000000,
    'position.longitude': 27.5615,
    'position.latitude': 53.9023,
    'position.altitude': 220,
    'position.speed': 42,
    'position.direction': 90,
    'position.satellites': 9,
    din: 5,
    drv: 'Ivan',
    odo: 5000000000,
    pwr_ext: 12.6,
  };
  assert.equal(encodeMessage(message).toString('hex'), vector('S1v').toString('hex'));
});

test('byte order: size u32 LE, time/flags/int32/int64 BE, doubles LE (not native order)', () => {
  const bytes = encodeMessage({ ident: 'u', timestamp: 0x01020304, i: 0x0a0b0c0d, d: 1.5, l: 2 ** 40 });
  assert.equal(bytes.readUInt32LE(0), bytes.length - 4);
  assert.equal(bytes.subarray(6, 10).toString('hex'), '01020304');
  const hex = bytes.toString('hex');
  assert.ok(hex.includes('0bbb0000000800036900' + '0a0b0c0d'), 'int32 block, big-endian');
  assert.ok(hex.includes('0bbb0000000c00046400' + '000000000000f83f'), 'double block, little-endian 1.5');
  assert.ok(hex.includes('0bbb0000000c00056c00' + '0000010000000000'), 'int64 block (type 5), big-endian 2^40');
});

test('ident becomes the unit ID and timestamp the time (floored); neither is sent as a parameter', () => {
  const { packet } = roundTrip({ ...BASE, timestamp: 1700000000.999, x: 1 });
  assert.equal(packet.unitId, BASE.ident);
  assert.equal(packet.time, 1700000000);
  assert.deepEqual(
    packet.blocks.map((b) => b.name),
    ['x'],
  );
  assert.equal(packet.flags, 0);
});

test('a message without ident or timestamp cannot be encoded: the error names the field', () => {
  const fails = (message: FlespiMessage, field: string, text: RegExp) =>
    assert.throws(
      () => encodeMessage(message),
      (e: unknown) => e instanceof WialonEncodeError && e.field === field && text.test(e.message),
    );
  fails({ timestamp: 1 }, 'ident', /message has no "ident"/);
  fails({ ident: '', timestamp: 1 }, 'ident', /non-empty string/);
  fails({ ident: 42, timestamp: 1 }, 'ident', /non-empty string, got 42/);
  fails({ ident: 'Ünit', timestamp: 1 }, 'ident', /outside printable ASCII/);
  fails({ ident: 'u' }, 'timestamp', /message has no "timestamp"/);
  fails({ ident: 'u', timestamp: '1700000000' }, 'timestamp', /must be a number of seconds/);
  fails({ ident: 'u', timestamp: -1 }, 'timestamp', /does not fit Wialon's unsigned 32-bit/);
  fails({ ident: 'u', timestamp: 2 ** 32 }, 'timestamp', /does not fit/);
});

test('numbers: int32 range -> type 3, larger safe integers -> type 5 (never 8 bytes tagged int32), the rest -> double', () => {
  const { packet } = roundTrip({
    ...BASE,
    max32: 2147483647,
    min32: -2147483648,
    over32: 2147483648,
    under32: -2147483649,
    big: 3000000000,
    mileage: 5000000000,
    maxSafe: Number.MAX_SAFE_INTEGER,
    unsafe: 2 ** 60,
    fraction: 12.25,
    negative: -0.5,
  });
  const typed = Object.fromEntries(packet.blocks.map((b) => [b.name, [b.type, b.value]]));
  assert.deepEqual(typed, {
    max32: ['int32', 2147483647],
    min32: ['int32', -2147483648],
    over32: ['int64', 2147483648n],
    under32: ['int64', -2147483649n],
    big: ['int64', 3000000000n],
    mileage: ['int64', 5000000000n],
    maxSafe: ['int64', BigInt(Number.MAX_SAFE_INTEGER)],
    unsafe: ['double', 2 ** 60],
    fraction: ['double', 12.25],
    negative: ['double', -0.5],
  });
});

test('booleans are int32 0/1; bigint values are int64', () => {
  assert.deepEqual(block({ ...BASE, on: true }, 'on'), { name: 'on', attribute: 0, type: 'int32', value: 1 });
  assert.deepEqual(block({ ...BASE, off: false }, 'off'), { name: 'off', attribute: 0, type: 'int32', value: 0 });
  assert.deepEqual(block({ ...BASE, n: -(2n ** 63n) }, 'n'), { name: 'n', attribute: 0, type: 'int64', value: -(2n ** 63n) });
});

test('text is UTF-8, NUL-terminated, and its block size counts bytes, not characters', () => {
  const { packet, bytes } = roundTrip({ ...BASE, name: 'Ölaf', emoji: 'км/ч 🚚' });
  assert.equal(findBlock(packet, 'name')?.value, 'Ölaf');
  assert.equal(findBlock(packet, 'emoji')?.value, 'км/ч 🚚');
  const hex = bytes.toString('hex');
  // size 0x0d = attribute + type + "name\0" (5) + "Ölaf" (5 bytes, 4 characters) + NUL
  assert.ok(hex.includes('0bbb0000000d00016e616d6500' + 'c3966c616600'), hex);
});

test('text containing NUL is skipped and reported', () => {
  const { packet, issues } = roundTrip({ ...BASE, bad: 'a\0b', good: 'ab' });
  assert.equal(findBlock(packet, 'bad'), undefined);
  assert.equal(findBlock(packet, 'good')?.value, 'ab');
  assert.deepEqual(
    issues.map((i) => [i.parameter, i.action]),
    [['bad', 'skipped']],
  );
  assert.match(issues[0].reason, /NUL/);
});

test('names longer than 38 bytes are shortened to a stable 38-byte name and reported; 38 bytes pass as they are', () => {
  const long = 'can.tachograph.driver.1.card.presence.status'; // 44
  const exact = 'x'.repeat(38);
  const { packet, issues } = roundTrip({ ...BASE, [long]: 1, [exact]: 2 });
  const sentAs = shortName(long);
  assert.equal(sentAs.length, 38);
  assert.equal(sentAs, 'can.tachograph.driver.1.card.~a9eb4554', 'the example in docs/wialon.md');
  assert.equal(shortName(long), sentAs, 'stable');
  assert.notEqual(shortName(long + 'x'), sentAs);
  assert.equal(findBlock(packet, sentAs)?.value, 1);
  assert.equal(findBlock(packet, exact)?.value, 2);
  assert.deepEqual(issues, [{ parameter: long, action: 'renamed', reason: "the name is longer than Wialon's 38-byte limit", sentAs }]);
});

test('objects and arrays are sent as JSON text and reported as converted', () => {
  const { packet, issues } = roundTrip({ ...BASE, 'ble.beacons': [{ id: 'a1', rssi: -70 }], cfg: { a: 1, b: [true] } });
  assert.equal(findBlock(packet, 'ble.beacons')?.value, '[{"id":"a1","rssi":-70}]');
  assert.equal(findBlock(packet, 'cfg')?.value, '{"a":1,"b":[true]}');
  assert.deepEqual(
    issues.map((i) => [i.parameter, i.action]),
    [
      ['ble.beacons', 'converted'],
      ['cfg', 'converted'],
    ],
  );
});

test('null, NaN, Infinity, non-ASCII names and un-JSON-able objects are skipped, each reported', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const { packet, issues } = roundTrip({ ...BASE, gone: null, nan: NaN, inf: -Infinity, темп: 5, loop: cyclic, kept: 1 });
  assert.deepEqual(
    packet.blocks.map((b) => b.name),
    ['kept'],
  );
  const byName = Object.fromEntries(issues.map((i) => [i.parameter, i]));
  assert.deepEqual(Object.keys(byName).sort(), ['gone', 'inf', 'loop', 'nan', 'темп']);
  assert.ok(issues.every((i) => i.action === 'skipped'));
  assert.match(byName.gone.reason, /null/);
  assert.match(byName.nan.reason, /NaN is not a finite number/);
  assert.match(byName.inf.reason, /-Infinity is not a finite number/);
  assert.match(byName['темп'].reason, /printable ASCII/);
  assert.match(byName.loop.reason, /cannot be written as JSON/);
});

test('posinfo: lon, lat, alt exact; speed and course rounded into u16, satellites into u8; attribute 1 and flag 0x01', () => {
  const { packet } = roundTrip({
    ...BASE,
    'position.latitude': -17.724326,
    'position.longitude': -63.171542,
    'position.altitude': 398.7,
    'position.speed': 42.6,
    'position.direction': 359.6,
    'position.satellites': 11,
    'position.hdop': 0.97,
    'position.valid': true,
  });
  assert.equal(packet.flags, 0x01);
  assert.deepEqual(packet.blocks[0], {
    name: 'posinfo',
    attribute: 1,
    type: 'posinfo',
    value: { longitude: -63.171542, latitude: -17.724326, altitude: 398.7, speed: 43, course: 0, satellites: 11 },
  });
  // Fields folded into posinfo are not repeated; other position.* parameters are.
  assert.deepEqual(
    packet.blocks.slice(1).map((b) => [b.name, b.value]),
    [
      ['position.hdop', 0.97],
      ['position.valid', 1],
    ],
  );
});

test('posinfo: missing altitude, speed, course and satellites are 0; out-of-range values are clamped', () => {
  const minimal = block({ ...BASE, 'position.latitude': 1, 'position.longitude': 2 }, 'posinfo');
  assert.deepEqual(minimal?.value, { longitude: 2, latitude: 1, altitude: 0, speed: 0, course: 0, satellites: 0 });
  const wild = block(
    { ...BASE, 'position.latitude': 1, 'position.longitude': 2, 'position.speed': 70000, 'position.direction': -10, 'position.satellites': 300 },
    'posinfo',
  );
  assert.deepEqual(wild?.value, { longitude: 2, latitude: 1, altitude: 0, speed: 65535, course: 350, satellites: 255 });
  const negative = block({ ...BASE, 'position.latitude': 1, 'position.longitude': 2, 'position.speed': -3, 'position.direction': 725 }, 'posinfo');
  assert.deepEqual([negative?.value], [{ longitude: 2, latitude: 1, altitude: 0, speed: 0, course: 5, satellites: 0 }]);
});

test('posinfo needs both latitude and longitude; without them the position fields go as plain parameters and flag 0x01 stays off', () => {
  const { packet } = roundTrip({ ...BASE, 'position.latitude': 53.9, 'position.speed': 10 });
  assert.equal(packet.flags, 0);
  assert.equal(findBlock(packet, 'posinfo'), undefined);
  assert.deepEqual(
    packet.blocks.map((b) => [b.name, b.type, b.value]),
    [
      ['position.latitude', 'double', 53.9],
      ['position.speed', 'int32', 10],
    ],
  );
});

test('din/dout bit masks become avl_inputs/avl_outputs (int32, attribute 1, flags 0x02/0x04)', () => {
  const { packet } = roundTrip({ ...BASE, din: 5, dout: 0x80000001 });
  assert.equal(packet.flags, 0x02 | 0x04);
  assert.deepEqual(findBlock(packet, 'avl_inputs'), { name: 'avl_inputs', attribute: 1, type: 'int32', value: 5 });
  assert.deepEqual(findBlock(packet, 'avl_outputs'), { name: 'avl_outputs', attribute: 1, type: 'int32', value: -2147483647 }, 'the same 32 bits');
  assert.equal(findBlock(packet, 'din'), undefined);
  assert.equal(findBlock(packet, 'dout'), undefined);
});

test('din.N/dout.N booleans become mask bits N-1 when there is no din/dout mask', () => {
  const { packet } = roundTrip({ ...BASE, 'din.1': true, 'din.2': false, 'din.3': true, 'din.33': true, 'dout.32': true, 'din.x': true });
  assert.equal(findBlock(packet, 'avl_inputs')?.value, 0b101);
  assert.equal(findBlock(packet, 'avl_outputs')?.value, -2147483648);
  assert.deepEqual(
    packet.blocks.filter((b) => b.attribute === 0).map((b) => b.name),
    ['din.33', 'din.x'],
    'bits that do not fit 32 inputs stay plain parameters',
  );
  const both = roundTrip({ ...BASE, din: 2, 'din.1': true }).packet;
  assert.equal(findBlock(both, 'avl_inputs')?.value, 2, 'the din mask wins');
  assert.equal(findBlock(both, 'din.1')?.value, 1, 'din.N not folded into the mask is still sent');
});

test('reserved names: a "posinfo" parameter is skipped; avl_inputs from the message collides with din; alone it gets attribute 1', () => {
  const collide = roundTrip({ ...BASE, posinfo: 'x', din: 1, avl_inputs: 7 });
  assert.deepEqual(
    collide.packet.blocks.map((b) => [b.name, b.value]),
    [['avl_inputs', 1]],
  );
  assert.deepEqual(
    collide.issues.map((i) => [i.parameter, i.action, i.reason]),
    [
      ['posinfo', 'skipped', 'the name "posinfo" is reserved for the position block'],
      ['avl_inputs', 'skipped', 'the Wialon name "avl_inputs" is already used in this packet'],
    ],
  );
  const alone = roundTrip({ ...BASE, avl_inputs: 7 }).packet;
  assert.deepEqual(alone.blocks, [{ name: 'avl_inputs', attribute: 1, type: 'int32', value: 7 }]);
  assert.equal(alone.flags, 0x02);
});

test('ordinary parameters have attribute 0 (shown)', () => {
  const { packet } = roundTrip({ ...BASE, a: 1, b: 'x', c: 1.5 });
  assert.deepEqual(
    packet.blocks.map((b) => b.attribute),
    [0, 0, 0],
  );
});

test('realistic flespi messages survive encode -> strict decode with every parameter accounted for', () => {
  const messages: FlespiMessage[] = [
    {
      'battery.voltage': 3.938,
      'channel.id': 429,
      'device.id': 182083,
      'device.name': 'Vehicle',
      'device.type.id': 744,
      'engine.ignition.status': false,
      'external.powersource.voltage': 12.64,
      'gsm.operator.code': '25701',
      'gsm.signal.level': 80,
      ident: '111115555599999',
      'movement.status': false,
      peer: '',
      'position.altitude': 244,
      'position.direction': 281,
      'position.hdop': 0.3,
      'position.latitude': 43.955218,
      'position.longitude': 37.661918,
      'position.satellites': 15,
      'position.speed': 0,
      'position.valid': true,
      'protocol.id': 16,
      'server.timestamp': 1700000000.123456,
      timestamp: 1699999990,
      din: 3,
      'can.vehicle.mileage': 5000000000,
    },
    {
      'battery.charging.status': false,
      'battery.level': 70,
      'channel.id': 1190401,
      ident: '015136001986400',
      'lock.status': true,
      'message.type': 'H0',
      peer: '203.0.113.10:40522',
      'server.timestamp': 1706905170.17258,
      timestamp: 1706905170.17258,
    },
  ];
  for (const message of messages) {
    const { packet, issues } = roundTrip(message);
    assert.deepEqual(issues, []);
    assert.equal(packet.unitId, message.ident);
    assert.equal(packet.time, Math.floor(message.timestamp as number));
    const folded = new Set([
      'ident',
      'timestamp',
      'din',
      'position.latitude',
      'position.longitude',
      'position.altitude',
      'position.speed',
      'position.direction',
      'position.satellites',
    ]);
    for (const [key, original] of Object.entries(message)) {
      if (folded.has(key)) continue;
      const sent = findBlock(packet, key);
      assert.ok(sent, `parameter ${key} missing`);
      const expected = typeof original === 'boolean' ? Number(original) : original;
      const actual = sent.type === 'int64' ? Number(sent.value) : sent.value;
      assert.equal(actual, expected, key);
    }
    const hasPosition = 'position.latitude' in message;
    assert.equal(packet.flags & 0x01, hasPosition ? 1 : 0);
    if (hasPosition) {
      assert.deepEqual(findBlock(packet, 'posinfo')?.value, {
        longitude: 37.661918,
        latitude: 43.955218,
        altitude: 244,
        speed: 0,
        course: 281,
        satellites: 15,
      });
      assert.equal(findBlock(packet, 'avl_inputs')?.value, 3);
    }
  }
});

test('encodePacket round-trips every block type and refuses what the decoder would reject', () => {
  const packet: WialonPacket = {
    unitId: 'x',
    time: 4294967295,
    flags: 0x37,
    blocks: [
      { name: 'posinfo', attribute: 1, type: 'posinfo', value: { longitude: -180, latitude: 90, altitude: -10.5, speed: 65535, course: 359, satellites: 255 } },
      { name: 'raw', attribute: 0, type: 'binary', value: Buffer.from([0x0b, 0xbb, 0]) },
      { name: 'image', attribute: 0, type: 'image', value: Buffer.from([0xff, 0xd8]) },
      { name: 'empty', attribute: 0, type: 'text', value: '' },
    ],
  };
  assert.deepEqual(decodePacket(encodePacket(packet)), packet);
  const refuses = (change: Partial<WialonPacket>, text: RegExp) =>
    assert.throws(
      () => encodePacket({ ...packet, ...change }),
      (e: unknown) => e instanceof WialonEncodeError && text.test(e.message),
    );
  refuses({ time: -1 }, /time -1 must be an integer/);
  refuses({ unitId: 'a\0b' }, /printable ASCII/);
  refuses({ blocks: [{ name: 'n', attribute: 2, type: 'int32', value: 1 }] }, /attribute 2 must be 0 or 1/);
  refuses({ blocks: [{ name: 'n', attribute: 0, type: 'int32', value: 2 ** 31 }] }, /not a 32-bit signed integer/);
  refuses({ blocks: [{ name: 'n'.repeat(39), attribute: 0, type: 'int32', value: 1 }] }, /longer than 38 bytes/);
  refuses({ blocks: [{ name: 'posinfo', attribute: 1, type: 'int32', value: 1 }] }, /only the posinfo block/);
  refuses(
    { blocks: [{ name: 'posinfo', attribute: 1, type: 'posinfo', value: { longitude: 1, latitude: 1, altitude: 0, speed: 1.5, course: 0, satellites: 0 } }] },
    /speed and course must be integers/,
  );
});
