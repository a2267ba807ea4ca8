import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketSplitter, WialonDecodeError, decodePacket, findBlock, type PosInfo, type WialonBlock, type WialonPacket } from '../../src/core/wialon/codec';
import { CAPTURES, capture, randomChunks, vector } from './support';

function near(actual: number, expected: number, digits = 6): void {
  assert.ok(Math.abs(actual - expected) < 10 ** -digits, `${actual} is not ${expected} to ${digits} digits`);
}

function value(packet: WialonPacket, name: string): WialonBlock['value'] {
  const block = findBlock(packet, name);
  assert.ok(block, `no block "${name}" in ${packet.blocks.map((b) => b.name).join(', ')}`);
  return block.value;
}

function position(packet: WialonPacket): PosInfo {
  const block = findBlock(packet, 'posinfo');
  assert.ok(block && block.type === 'posinfo', 'no posinfo block');
  return block.value;
}

function assertPosition(packet: WialonPacket, expected: PosInfo, digits = 6): void {
  const p = position(packet);
  near(p.longitude, expected.longitude, digits);
  near(p.latitude, expected.latitude, digits);
  near(p.altitude, expected.altitude, digits);
  assert.deepEqual([p.speed, p.course, p.satellites], [expected.speed, expected.course, expected.satellites]);
}

function splitAll(bytes: Buffer): Buffer[] {
  const splitter = new PacketSplitter();
  const packets = splitter.push(bytes);
  assert.equal(splitter.pendingBytes, 0, 'bytes left over after the last packet');
  return packets;
}

test('V1 (the spec example) decodes field by field', () => {
  const packet = decodePacket(vector('V1'));
  assert.equal(packet.unitId, '353976013445485');
  assert.equal(packet.time, 1259076464);
  assert.equal(new Date(packet.time * 1000).toISOString(), '2009-11-24T15:27:44.000Z');
  assert.equal(packet.flags, 3);
  assert.deepEqual(
    packet.blocks.map((b) => [b.name, b.type, b.attribute]),
    [
      ['posinfo', 'posinfo', 1],
      ['pwr_ext', 'double', 0],
      ['avl_inputs', 'int32', 1],
    ],
  );
  assertPosition(packet, { longitude: 49.1903648, latitude: 55.7305664, altitude: 106, speed: 54, course: 326, satellites: 11 });
  near(value(packet, 'pwr_ext') as number, 27.593);
  assert.equal(value(packet, 'avl_inputs'), 1, 'int32 is big-endian: 00000001 is 1, not 16777216');
});

test('V2 differs from V1 only in its time', () => {
  const v1 = decodePacket(vector('V1'));
  const v2 = decodePacket(vector('V2'));
  assert.equal(v2.time, 1565613499);
  assert.deepEqual({ ...v2, time: 0 }, { ...v1, time: 0 });
});

test('V3 (Traccar): int32 cell data, NUL-terminated text, doubles, negative longitude', () => {
  const packet = decodePacket(vector('V3'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['353549090094730', 1527946079, 1]);
  assertPosition(packet, { longitude: -91.0526311, latitude: 14.0781356, altitude: 0, speed: 0, course: 19, satellites: 13 });
  const ints = { mcc: 704, mnc: 1, lac: 329, cell_id: 22105, acc: 0, data_mode: 14, gps_real_up: 0, serial: 2203 };
  for (const [name, expected] of Object.entries(ints)) {
    assert.deepEqual([findBlock(packet, name)?.type, value(packet, name)], ['int32', expected], name);
  }
  assert.deepEqual(findBlock(packet, 'msg_type'), { name: 'msg_type', attribute: 0, type: 'text', value: '0x22' });
  assert.equal(value(packet, 'custom'), 19);
  assert.equal(value(packet, 'mileage'), 0);
  assert.equal(packet.blocks.length, 12);
});

test('V4 (gotrackery): flags 7 without avl blocks', () => {
  const packet = decodePacket(vector('V4'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['301785', 1681216191, 7]);
  assertPosition(packet, { longitude: 55.9811, latitude: 53.66389, altitude: 0, speed: 0, course: 170, satellites: 18 });
  near(value(packet, 'pwr_ext') as number, 26.149);
  near(value(packet, 'pwr_int') as number, 4.361);
  assert.deepEqual(
    packet.blocks.map((b) => b.name),
    ['posinfo', 'pwr_ext', 'pwr_int'],
  );
});

test('V5 (IAlexandr): two packets in one buffer are split and both decode', () => {
  const [first, second, ...rest] = splitAll(vector('V5')).map(decodePacket);
  assert.equal(rest.length, 0);
  assert.deepEqual([first.unitId, first.time, first.flags], ['012207009658060', 1448366814, 1]);
  assert.deepEqual([second.unitId, second.time, second.flags], ['012207009658060', 1448366844, 1]);
  assertPosition(first, { longitude: 47.176268, latitude: 56.108432, altitude: 164, speed: 3, course: 93, satellites: 14 });
  assertPosition(second, { longitude: 47.176276, latitude: 56.108432, altitude: 164, speed: 0, course: 111, satellites: 15 });
  near(value(first, 'pwr_ext') as number, 13.84);
  near(value(second, 'pwr_ext') as number, 13.87);
});

test('V6 (gotrackery 0002.data): avl_inputs and six doubles', () => {
  const packet = decodePacket(vector('V6'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['866192032620997', 1681282651, 3]);
  assertPosition(packet, { longitude: 37.7360933, latitude: 55.466615, altitude: 173, speed: 0, course: 256, satellites: 3 });
  assert.deepEqual(findBlock(packet, 'avl_inputs'), { name: 'avl_inputs', attribute: 1, type: 'int32', value: 0 });
  const doubles = { pwr_int: 3.53, egts_mt_id: 3153064, pwr_ext: 0.054, lls1: 65530, gsm1: 87, lls2: 65530 };
  for (const [name, expected] of Object.entries(doubles)) {
    assert.equal(findBlock(packet, name)?.type, 'double', name);
    near(value(packet, name) as number, expected);
  }
});

test('V7 (UndeadDemidov): every block hidden', () => {
  const packet = decodePacket(vector('V7'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['423876197', 1654671526, 3]);
  assertPosition(packet, { longitude: 86.7263737, latitude: 54.3304085, altitude: 1.1, speed: 0, course: 0, satellites: 11 });
  assert.equal(value(packet, 'adc1'), 550);
  assert.equal(value(packet, 'adc2'), 453);
  near(value(packet, 'mileage') as number, 30.7);
  assert.ok(packet.blocks.every((b) => b.attribute === 1));
});

test('V8 (customr): ign and sens', () => {
  const packet = decodePacket(vector('V8'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['352094088980534', 1588856151, 3]);
  assertPosition(packet, { longitude: 51.350117, latitude: 53.36212, altitude: 0, speed: 17, course: 224, satellites: 18 });
  assert.equal(value(packet, 'ign'), 1);
  assert.equal(value(packet, 'sens'), 0);
});

test('V9 (0004.data packet 0): int64 values and posinfo as the last block', () => {
  const packet = decodePacket(vector('V9'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['904104', 1681282074, 7]);
  assert.equal(packet.blocks.length, 20); // 17 int32/double, 2 int64, posinfo
  assert.deepEqual(findBlock(packet, 'info_messages'), { name: 'info_messages', attribute: 0, type: 'int64', value: 316n });
  assert.deepEqual(findBlock(packet, 'imps_1'), { name: 'imps_1', attribute: 0, type: 'int64', value: 0n });
  assert.equal(packet.blocks.at(-1)?.name, 'posinfo');
  assertPosition(packet, { longitude: 37.7012787, latitude: 55.8653336, altitude: 160, speed: 0, course: 0, satellites: 23 });
});

test('V10 (0004.data packet 6): text value and pwr_ext as int32', () => {
  const packet = decodePacket(vector('V10'));
  assert.deepEqual([packet.unitId, packet.flags], ['749299', 7]);
  assert.deepEqual(findBlock(packet, 'im1'), { name: 'im1', attribute: 0, type: 'text', value: '318' });
  assert.deepEqual([findBlock(packet, 'pwr_ext')?.type, value(packet, 'pwr_ext')], ['int32', 11800]);
  assert.equal(value(packet, 'pwr_int'), 4117);
  assert.equal(packet.blocks.at(-1)?.name, 'posinfo');
});

test('S1v (synthetic): every data type in one packet', () => {
  const packet = decodePacket(vector('S1v'));
  assert.deepEqual([packet.unitId, packet.time, packet.flags], ['unit-2', 1700000000, 3]);
  assertPosition(packet, { longitude: 27.5615, latitude: 53.9023, altitude: 220, speed: 42, course: 90, satellites: 9 }, 9);
  assert.deepEqual(packet.blocks.slice(1), [
    { name: 'avl_inputs', attribute: 1, type: 'int32', value: 5 },
    { name: 'drv', attribute: 0, type: 'text', value: 'Ivan' },
    { name: 'odo', attribute: 0, type: 'int64', value: 5000000000n },
    { name: 'pwr_ext', attribute: 0, type: 'double', value: 12.6 },
  ]);
});

test('N1: a value holding the bytes 0B BB is a value, not a block', () => {
  const packet = decodePacket(vector('N1'));
  assert.equal(packet.blocks.length, 2);
  assert.equal(value(packet, 'avl_inputs'), 3003);
});

test('N2: a size field of exactly 256 (first byte 0x00) frames and decodes', () => {
  const bytes = vector('N2');
  assert.equal(bytes.readUInt32LE(0), 256);
  const [packet] = splitAll(bytes).map(decodePacket);
  assert.equal(packet.flags, 1);
  assert.deepEqual(findBlock(packet, 'note'), { name: 'note', attribute: 0, type: 'text', value: 'x'.repeat(173) });
  assertPosition(packet, { longitude: 49.19, latitude: 55.73, altitude: 106, speed: 54, course: 326, satellites: 11 });
});

test('captures: all 9,284 packets decode, with the documented counts and values', () => {
  const decoded = new Map<string, WialonPacket[]>();
  for (const { file, packets } of CAPTURES) {
    const list = splitAll(capture(file)).map(decodePacket);
    assert.equal(list.length, packets, file);
    decoded.set(file, list);
  }
  assert.equal(
    [...decoded.values()].reduce((n, list) => n + list.length, 0),
    9284,
  );

  const [only] = decoded.get('0001.data')!;
  assert.equal(only.unitId, '862631037611646');
  assert.equal(findBlock(only, 'posinfo')?.attribute, 0);
  assert.equal(only.blocks.filter((b) => b.attribute === 1).length, 42);

  assert.deepEqual(capture('0002.data'), vector('V6'));

  const bulk = decoded.get('0003.data')!;
  assert.equal(new Set(bulk.map((p) => p.unitId)).size, 122);
  assert.ok(bulk.every((p) => p.flags === 7 && p.blocks.every((b) => ['posinfo', 'pwr_ext', 'pwr_int'].includes(b.name))));

  const mixed = decoded.get('0004.data')!;
  assert.deepEqual(mixed[0], decodePacket(vector('V9')));
  assert.deepEqual(mixed[6], decodePacket(vector('V10')));
  const types = new Set(mixed.flatMap((p) => p.blocks.map((b) => b.type)));
  assert.deepEqual([...types].sort(), ['double', 'int32', 'int64', 'posinfo', 'text']);
});

test('splitter: captures fed at seeded random boundaries give the same packets', () => {
  const all = Buffer.concat(CAPTURES.map((c) => capture(c.file)));
  const whole = splitAll(all);
  assert.equal(whole.length, 9284);
  for (const [seed, maxChunk] of [
    [1, 3],
    [2, 7],
    [3, 64],
    [4, 700],
    [5, 5000],
  ]) {
    const splitter = new PacketSplitter();
    const pieces = randomChunks(all, seed, maxChunk).flatMap((chunk) => splitter.push(chunk));
    assert.equal(pieces.length, whole.length, `seed ${seed}`);
    assert.ok(
      pieces.every((p, i) => p.equals(whole[i])),
      `seed ${seed}: a packet differs`,
    );
    assert.equal(splitter.pendingBytes, 0);
  }
});

test('splitter: a read ending right after the 4 size bytes, and a size that is a multiple of 256', () => {
  const splitter = new PacketSplitter();
  const v2 = vector('V2');
  const n2 = vector('N2');
  assert.deepEqual(splitter.push(v2.subarray(0, 4)), []);
  assert.equal(splitter.pendingBytes, 4);
  assert.deepEqual(splitter.push(v2.subarray(4)), [v2]);
  // N2 one byte at a time: its size field starts with 0x00.
  const out: Buffer[] = [];
  for (const byte of n2) out.push(...splitter.push(Buffer.from([byte])));
  assert.deepEqual(out, [n2]);
  // The size field itself split 1 + 3, glued to the end of the previous packet.
  const glued = Buffer.concat([v2, n2.subarray(0, 1)]);
  assert.deepEqual(splitter.push(glued), [v2]);
  assert.deepEqual(splitter.push(n2.subarray(1, 4)), []);
  assert.deepEqual(splitter.push(n2.subarray(4)), [n2]);
});

test('splitter: a size beyond the limit is an error naming the stream offset', () => {
  const splitter = new PacketSplitter(1024);
  splitter.push(vector('V1'));
  assert.throws(
    () => splitter.push(Buffer.from('GET / HTTP/1.1\r\n')),
    (e: unknown) => e instanceof WialonDecodeError && e.offset === 120 && /exceeds the limit of 1024/.test(e.message),
  );
});

// --- strictness: hand-built packets, independent of the encoder ---

function rawBlock(attribute: number, type: number, name: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([attribute, type]), Buffer.from(name + '\0', 'latin1'), value]);
  const header = Buffer.alloc(6);
  header.writeUInt16BE(0x0bbb, 0);
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function rawPacket(...blocks: Buffer[]): Buffer {
  const head = Buffer.concat([Buffer.from('unit\0', 'latin1'), Buffer.from([0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0])]);
  const body = Buffer.concat([head, ...blocks]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(body.length, 0);
  return Buffer.concat([size, body]);
}

function rejects(bytes: Buffer, reason: RegExp, offset: number): void {
  assert.throws(
    () => decodePacket(bytes),
    (e: unknown) => {
      assert.ok(e instanceof WialonDecodeError, `not a WialonDecodeError: ${String(e)}`);
      assert.match(e.message, reason);
      assert.equal(e.offset, offset, e.message);
      return true;
    },
  );
}

test('decoder: the hand-built packet helper makes valid packets', () => {
  const packet = decodePacket(rawPacket(rawBlock(0, 3, 'n', Buffer.from([0, 0, 0, 7]))));
  assert.deepEqual(packet, { unitId: 'unit', time: 1700000000, flags: 0, blocks: [{ name: 'n', attribute: 0, type: 'int32', value: 7 }] });
});

test('decoder rejects a size field that does not match, saying both sizes', () => {
  const bytes = vector('V1');
  bytes.writeUInt32LE(117, 0);
  rejects(bytes, /size field says 117 bytes follow it, but 116 do/, 0);
  rejects(Buffer.from([1, 0]), /too few for the 4-byte size field/, 0);
});

test('decoder rejects a missing block marker at its offset (never searches for 0BBB)', () => {
  const bytes = vector('V1');
  bytes[73] = 0x0c; // the pwr_ext block marker
  rejects(bytes, /expected the block marker 0x0BBB, found 0x0CBB/, 73);
});

test('decoder rejects a block that runs past the end of the packet', () => {
  const bytes = vector('V1');
  bytes.writeUInt32BE(200, 30); // posinfo block size 39 -> 200
  rejects(bytes, /block says 200 bytes follow its header, but only 86 remain/, 28);
});

test('decoder rejects wrong value lengths for posinfo, int32, int64 and double', () => {
  // Hand-built packets: size 0-3, "unit\0" 4-8, time and flags 9-16, first block at 17 (name at 25).
  rejects(rawPacket(rawBlock(1, 2, 'posinfo', Buffer.alloc(28))), /posinfo value must be 29 bytes, found 28/, 33);
  rejects(rawPacket(rawBlock(0, 3, 'i', Buffer.alloc(3))), /"i": int32 value must be 4 bytes, found 3/, 27);
  rejects(rawPacket(rawBlock(0, 5, 'l', Buffer.alloc(4))), /"l": int64 value must be 8 bytes, found 4/, 27);
  rejects(rawPacket(rawBlock(0, 4, 'd', Buffer.alloc(9))), /"d": double value must be 8 bytes, found 9/, 27);
  rejects(rawPacket(rawBlock(1, 3, 'posinfo', Buffer.alloc(4))), /"posinfo" must have data type 2, found 3/, 24);
});

test('decoder rejects text without its NUL, or with a NUL inside', () => {
  rejects(rawPacket(rawBlock(0, 1, 't', Buffer.from('abc'))), /"t": text value must end with a NUL byte/, 27);
  rejects(rawPacket(rawBlock(0, 1, 't', Buffer.from('a\0c\0'))), /"t": text value has a NUL byte before its end/, 28);
});

test('decoder rejects names and unit IDs that are not ASCIIZ', () => {
  const noNul = rawPacket(rawBlock(0, 3, 'abc', Buffer.alloc(4)));
  noNul.fill(0x41, 28); // overwrite the name's NUL and the value with 'A'
  rejects(noNul, /block name has no terminating NUL inside the block/, 25);
  rejects(rawPacket(rawBlock(0, 3, 'caf\xe9', Buffer.alloc(4))), /block name has the byte 0xe9, outside printable ASCII/, 28);
  rejects(rawPacket(rawBlock(0, 3, '', Buffer.alloc(4))), /block name is empty/, 25);
  const noUnitNul = Buffer.from('05000000414243444500', 'hex').subarray(0, 9);
  noUnitNul.writeUInt32LE(5, 0);
  rejects(noUnitNul, /unit ID has no terminating NUL/, 4);
});

test('decoder rejects unknown data types, bad attributes, too-long names and stray bytes', () => {
  rejects(rawPacket(rawBlock(0, 7, 'x', Buffer.alloc(1))), /"x": unknown data type 7/, 24);
  rejects(rawPacket(rawBlock(2, 3, 'x', Buffer.alloc(4))), /"x": attribute 2 is neither 0/, 23);
  rejects(rawPacket(rawBlock(0, 3, 'n'.repeat(39), Buffer.alloc(4))), /longer than 38 bytes/, 25);
  const stray = rawPacket(rawBlock(0, 3, 'n', Buffer.alloc(4)), Buffer.from([0x0b, 0xbb, 0]));
  rejects(stray, /3 stray bytes after the last block/, 31);
});
