// The Wialon codec at its edges: every check of encodePacket at the last value it accepts and the first
// it refuses, the decoder's length checks at their boundaries, the splitter fed byte by byte, and the
// names the errors carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PacketSplitter,
  WialonDecodeError,
  WialonEncodeError,
  decodePacket,
  encodeMessage,
  encodePacket,
  messageToPacket,
  type WialonBlock,
  type WialonPacket,
} from '../../src/core/wialon/codec';

const packet = (blocks: WialonBlock[], header: Partial<WialonPacket> = {}): WialonPacket => ({ unitId: 'u1', time: 1, flags: 0, blocks, ...header });
const block = (b: Partial<WialonBlock> & Pick<WialonBlock, 'type' | 'value'>): WialonBlock => ({ name: 'p', attribute: 0, ...b }) as WialonBlock;
const position = { longitude: 1, latitude: 2, altitude: 3, speed: 0, course: 0, satellites: 0 };

function refuses(p: WialonPacket, field: string, message: RegExp): void {
  assert.throws(
    () => encodePacket(p),
    (e: unknown) => {
      assert.ok(e instanceof WialonEncodeError, `got ${String(e)}`);
      assert.equal(e.name, 'WialonEncodeError');
      assert.equal(e.field, field);
      assert.match(e.message, message);
      return true;
    },
  );
}

/** Encodes, decodes and compares: what encodes must decode to the same packet. */
function roundTrips(p: WialonPacket): void {
  assert.deepEqual(decodePacket(encodePacket(p)), p);
}

test('encodePacket: unit ID, time and flags at the edges of what they accept', () => {
  roundTrips(packet([], { unitId: ' ~', time: 0, flags: 0 }));
  roundTrips(packet([], { time: 0xffffffff, flags: 0xffffffff }));
  refuses(packet([], { unitId: '' }), 'unit id', /^unit ID "" must be non-empty printable ASCII$/);
  refuses(packet([], { unitId: 'a\x1f' }), 'unit id', /unit ID "a\\u001f" must be/);
  refuses(packet([], { unitId: 'a\x7f' }), 'unit id', /must be non-empty printable ASCII/);
  for (const time of [-1, 0x100000000, 1.5]) refuses(packet([], { time }), 'time', new RegExp(`^time ${time} must be an integer from 0 to 4294967295$`));
  for (const flags of [-1, 0x100000000, 0.5]) refuses(packet([], { flags }), 'flags', new RegExp(`^flags ${flags} must be an integer from 0 to 4294967295$`));
});

test('encodePacket: block names, text, int32, int64, double and posinfo at the edges', () => {
  roundTrips(packet([block({ name: 'x'.repeat(38), type: 'int32', value: -0x80000000 }), block({ name: ' ~', type: 'int32', value: 0x7fffffff })]));
  refuses(packet([block({ name: '', type: 'int32', value: 1 })]), '', /^block "": the name must be non-empty printable ASCII$/);
  refuses(packet([block({ name: 'é', type: 'int32', value: 1 })]), 'é', /the name must be non-empty printable ASCII/);
  refuses(packet([block({ name: 'x'.repeat(39), type: 'int32', value: 1 })]), 'x'.repeat(39), /the name is longer than 38 bytes/);
  for (const value of [-0x80000001, 0x80000000, 1.5])
    refuses(packet([block({ type: 'int32', value })]), 'p', new RegExp(`^block "p": ${value} is not a 32-bit signed integer$`));

  roundTrips(packet([block({ type: 'int64', value: -(1n << 63n) }), block({ name: 'q', type: 'int64', value: (1n << 63n) - 1n })]));
  for (const value of [-(1n << 63n) - 1n, 1n << 63n])
    refuses(packet([block({ type: 'int64', value })]), 'p', new RegExp(`^block "p": ${value} is not a 64-bit signed integer$`));

  roundTrips(packet([block({ type: 'double', value: -Number.MAX_VALUE })]));
  for (const value of [NaN, Infinity, -Infinity])
    refuses(packet([block({ type: 'double', value })]), 'p', new RegExp(`^block "p": ${value} is not a finite number$`));

  roundTrips(packet([block({ type: 'text', value: '' }), block({ name: 'q', type: 'text', value: 'ü' })]));
  refuses(packet([block({ type: 'text', value: 'a\0b' })]), 'p', /^block "p": text must not contain NUL$/);

  const edge = { ...position, speed: 65535, course: 65535, satellites: 255 };
  roundTrips(packet([block({ name: 'posinfo', attribute: 1, type: 'posinfo', value: edge })]));
  for (const field of ['longitude', 'latitude', 'altitude'] as const)
    refuses(
      packet([block({ name: 'posinfo', type: 'posinfo', value: { ...position, [field]: NaN } })]),
      'posinfo',
      /^block "posinfo": longitude, latitude and altitude must be finite numbers$/,
    );
  for (const over of [{ speed: 65536 }, { course: -1 }, { satellites: 256 }, { speed: 1.5 }])
    refuses(
      packet([block({ name: 'posinfo', type: 'posinfo', value: { ...position, ...over } })]),
      'posinfo',
      /speed and course must be integers 0\.\.65535, satellites 0\.\.255/,
    );
  refuses(packet([block({ attribute: 2, type: 'int32', value: 1 })]), 'p', /attribute 2 must be 0 or 1/);
  refuses(packet([block({ type: 'posinfo', value: position })]), 'p', /only the posinfo block may be, and must be, of type posinfo/);
});

test('decodePacket: each length check at its boundary, with the offset', () => {
  const decodeError = (buf: Buffer, reason: RegExp, offset: number) =>
    assert.throws(
      () => decodePacket(buf),
      (e: unknown) => e instanceof WialonDecodeError && e.name === 'WialonDecodeError' && reason.test(e.reason) && e.offset === offset,
      `${reason} at ${offset}`,
    );
  const sized = (body: Buffer) => Buffer.concat([Buffer.from([body.length, 0, 0, 0]), body]);
  decodeError(Buffer.from([0, 0, 0]), /^3 bytes are too few for the 4-byte size field$/, 0);
  decodeError(Buffer.from([0, 0, 0, 0]), /^the unit ID has no terminating NUL$/, 4);
  decodeError(sized(Buffer.from([0])), /^the unit ID is empty$/, 4);
  decodeError(sized(Buffer.from('a\0')), /^time and flags need 8 bytes, only 0 remain$/, 6);
  decodeError(sized(Buffer.from('a\0\0\0\0\0\0\0\0')), /^time and flags need 8 bytes, only 7 remain$/, 6);
  assert.deepEqual(decodePacket(sized(Buffer.from('a\0\0\0\0\x01\0\0\0\x02'))), { unitId: 'a', time: 1, flags: 2, blocks: [] });
  decodeError(sized(Buffer.from('a\x1f\0\0\0\0\0\0\0\0\0')), /^the unit ID has the byte 0x1f, outside printable ASCII$/, 5);
  decodeError(sized(Buffer.from('a\x7f\0\0\0\0\0\0\0\0\0')), /the byte 0x7f/, 5);
  assert.equal(decodePacket(sized(Buffer.from(' ~\0\0\0\0\0\0\0\0\0'))).unitId, ' ~');

  const header = Buffer.from('a\0\0\0\0\0\0\0\0\0');
  const withBlock = (blockBytes: number[]) => sized(Buffer.concat([header, Buffer.from(blockBytes)]));
  decodeError(withBlock([0x0b, 0xbb, 0, 0, 0]), /^5 stray bytes after the last block \(a block header has 6\)$/, 14);
  decodeError(withBlock([0x0b, 0xbb, 0, 0, 0, 2, 0, 1]), /^block size 2 is too small for attribute, data type and name$/, 14);
  decodeError(withBlock([0x0b, 0xbb, 0, 0, 0, 3, 0, 3, 0x70]), /^the block name has no terminating NUL inside the block$/, 22);
  // The name's NUL is the first byte after the block: outside it.
  decodeError(withBlock([0x0b, 0xbb, 0, 0, 0, 3, 0, 3, 0x70, 0]), /no terminating NUL inside the block/, 22);
  decodeError(withBlock([0x0b, 0xbb, 0, 0, 0, 3, 0, 3, 0]), /^the block name is empty$/, 22);
  decodeError(withBlock([0x0b, 0xbb, 0, 0, 0, 4, 0, 1, 0x70, 0]), /^block "p": text value must end with a NUL byte$/, 24);
  assert.deepEqual(decodePacket(withBlock([0x0b, 0xbb, 0, 0, 0, 5, 0, 1, 0x70, 0, 0])).blocks, [{ name: 'p', attribute: 0, type: 'text', value: '' }]);
});

test('PacketSplitter: fed one byte at a time, or with empty reads between, it gives each packet whole, at the limit and not past it', () => {
  const packets = [encodeMessage({ ident: 'a', timestamp: 1, x: 1 }), encodeMessage({ ident: 'bb', timestamp: 2, text: 'y'.repeat(300) })];
  const stream = Buffer.concat(packets);
  const splitter = new PacketSplitter();
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) {
    out.push(...splitter.push(Buffer.alloc(0)));
    out.push(...splitter.push(stream.subarray(i, i + 1)));
    if (i === 2) assert.equal(splitter.pendingBytes, 3);
  }
  assert.deepEqual(out, packets);
  assert.equal(splitter.pendingBytes, 0);

  // Size field split 1 + 2 + 1 across reads, the rest in one read with the next packet's first byte.
  const exact = new PacketSplitter(packets[0].length);
  assert.deepEqual(exact.push(packets[0].subarray(0, 1)), []);
  assert.deepEqual(exact.push(packets[0].subarray(1, 3)), []);
  assert.deepEqual(exact.push(Buffer.concat([packets[0].subarray(3), packets[0].subarray(0, 1)])), [packets[0]], 'a packet exactly at the limit passes');
  assert.equal(exact.pendingBytes, 1);

  const tight = new PacketSplitter(packets[0].length - 1);
  assert.throws(
    () => tight.push(packets[0]),
    (e: unknown) =>
      e instanceof WialonDecodeError &&
      e.offset === 0 &&
      e.reason ===
        `a packet of ${packets[0].length} bytes (size field included) exceeds the limit of ${packets[0].length - 1}: the stream is not Wialon Retranslator, or is out of step`,
  );
  const later = new PacketSplitter(packets[0].length);
  assert.throws(
    () => later.push(Buffer.concat([packets[0], packets[1]])),
    (e: unknown) => e instanceof WialonDecodeError && e.offset === packets[0].length,
  );
});

/** Both encoders (the one-pass one behind encodeMessage, and messageToPacket + encodePacket) give the same bytes; returns the decoded packet. */
function encodeBoth(message: Record<string, unknown>): WialonPacket {
  const fast = encodeMessage(message);
  const general = encodePacket(messageToPacket(message));
  assert.deepEqual(fast, general, 'the one-pass encoder and the general path agree');
  return decodePacket(fast);
}

test('numbers at the int32 and int64 edges, and timestamps at the u32 edges, through both encoders', () => {
  const decoded = encodeBoth({
    ident: 'n',
    timestamp: 0xffffffff + 0.9,
    a: 0x7fffffff,
    b: 0x80000000,
    c: -0x80000000,
    d: -0x80000001,
    e: (1n << 63n) - 1n,
    f: -(1n << 63n),
    g: 1n << 63n,
    h: -(1n << 63n) - 1n,
  });
  assert.equal(decoded.time, 0xffffffff);
  const byName = Object.fromEntries(decoded.blocks.map((b) => [b.name, [b.type, b.value]]));
  assert.deepEqual(byName, {
    a: ['int32', 0x7fffffff],
    b: ['int64', 0x80000000n],
    c: ['int32', -0x80000000],
    d: ['int64', -0x80000001n],
    e: ['int64', (1n << 63n) - 1n],
    f: ['int64', -(1n << 63n)],
    g: ['text', (1n << 63n).toString()],
    h: ['text', (-(1n << 63n) - 1n).toString()],
  });
  assert.equal(encodeBoth({ ident: 'n', timestamp: 0 }).time, 0);
  for (const timestamp of [-0.5, 0x100000000])
    assert.throws(() => encodeMessage({ ident: 'n', timestamp }), new RegExp(`"timestamp" ${timestamp} does not fit Wialon's unsigned 32-bit seconds field`));
  for (const ident of [undefined, null]) assert.throws(() => encodeMessage({ ident, timestamp: 1 }), /message has no "ident"/);
  for (const timestamp of [undefined, null]) assert.throws(() => encodeMessage({ ident: 'n', timestamp }), /message has no "timestamp"/);
});

test('a message far larger than the encoder buffer (64 KiB), with ASCII, 2- and 3-byte UTF-8 and the characters at 0x7f/0x80, through both encoders', () => {
  const texts: Record<string, string> = {
    ascii: 'a'.repeat(100_000),
    euro: '€'.repeat(30_000),
    edge: '\x7f\x80\u07ff\u0800',
  };
  const numbers = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`n${i}`, i * 1_000_003]));
  const decoded = encodeBoth({ ident: 'big', timestamp: 1, ...texts, ...numbers });
  for (const [name, text] of Object.entries(texts)) assert.equal(decoded.blocks.find((b) => b.name === name)?.value, text, name);
  assert.equal(decoded.blocks.find((b) => b.name === 'n4999')?.value, BigInt(4999 * 1_000_003), 'past int32: int64');
  assert.equal(decoded.blocks.find((b) => b.name === 'n2')?.value, 2 * 1_000_003);
  assert.equal(decoded.blocks.length, 3 + 5_000);
});
