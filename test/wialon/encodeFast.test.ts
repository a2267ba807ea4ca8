// encodeMessage writes packets in one pass (see onePassEncoder.ts); messageToPacket + encodePacket is the
// readable statement of the same rules. Both must give the same bytes, the same issues in the same
// order, and the same errors, for ordinary and odd messages alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMessage, encodePacket, messageToPacket, type EncodeIssue } from '../../src/core/wialon/codec';
import type { FlespiMessage } from '../../src/core/message';

function general(message: FlespiMessage): { bytes?: string; issues: EncodeIssue[]; error?: string } {
  const issues: EncodeIssue[] = [];
  try {
    return { bytes: encodePacket(messageToPacket(message, { onIssue: (i) => issues.push(i) })).toString('hex'), issues };
  } catch (error) {
    return { issues, error: String(error) };
  }
}

function onePass(message: FlespiMessage): { bytes?: string; issues: EncodeIssue[]; error?: string } {
  const issues: EncodeIssue[] = [];
  try {
    return { bytes: encodeMessage(message, { onIssue: (i) => issues.push(i) }).toString('hex'), issues };
  } catch (error) {
    return { issues, error: String(error) };
  }
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  'position.latitude',
  'position.longitude',
  'position.altitude',
  'position.speed',
  'position.direction',
  'position.satellites',
  'din',
  'dout',
  'din.1',
  'din.3',
  'din.32',
  'din.33',
  'din.0',
  'din.01',
  'dout.2',
  'dout.32',
  'din.x',
  'avl_driver',
  'avl_inputs',
  'avl_outputs',
  'posinfo',
  'battery.voltage',
  'gsm.signal.level',
  'peer',
  'can.data',
  'a.name.that.is.exactly.thirty-eight.by',
  'a.parameter.name.that.is.much.longer.than.thirty.eight.bytes',
  '',
  'темп',
  'tab\there',
];

const VALUES: ((r: () => number) => unknown)[] = [
  (r) => Math.floor(r() * 200) - 100,
  (r) => r() * 1000 - 500,
  (r) => Math.floor(r() * 2 ** 40) * (r() < 0.5 ? -1 : 1),
  () => 2 ** 31,
  () => -(2 ** 31),
  () => 2 ** 32 - 1,
  (r) => r() < 0.5,
  () => NaN,
  () => -Infinity,
  () => null,
  () => undefined,
  () => 'plain text',
  () => 'UTF-8: Grüße, 日本',
  () => 'with\0nul',
  () => '',
  () => [1, 'two', { three: 3 }],
  () => ({ nested: true }),
  (r) => BigInt(Math.floor(r() * 1e6)) * 10n ** 12n,
  () => 2n ** 70n,
  () => -0,
];

function randomMessage(r: () => number): FlespiMessage {
  const message: FlespiMessage = {};
  if (r() < 0.95) message.ident = r() < 0.97 ? `35262506600${Math.floor(r() * 10000)}` : 42;
  if (r() < 0.95) message.timestamp = r() < 0.97 ? 1700000000 + r() * 1e6 : 'soon';
  const count = Math.floor(r() * 12);
  for (let i = 0; i < count; i++) {
    const name = NAMES[Math.floor(r() * NAMES.length)]!;
    message[name] = VALUES[Math.floor(r() * VALUES.length)]!(r);
  }
  if (r() < 0.5) {
    message['position.latitude'] = r() * 180 - 90;
    message['position.longitude'] = r() * 360 - 180;
  }
  return message;
}

test('one-pass encodeMessage equals messageToPacket + encodePacket on 20,000 random messages (bytes, issues, errors)', () => {
  const r = prng(12345);
  let encoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const message = randomMessage(r);
    const expected = general(message);
    assert.deepEqual(onePass(message), expected, `message ${i}: ${JSON.stringify(message, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    if (expected.bytes) encoded++;
  }
  assert.ok(encoded > 15_000, `most random messages encode (${encoded})`);
});

test('messages of one shape in a row, then another shape, then the first again, encode like the general path', () => {
  const a = { ident: 'a', timestamp: 1, 'position.latitude': 1, 'position.longitude': 2, speed: 3, din: 5 };
  const b = { ident: 'b', timestamp: 2, speed: 'fast', 'din.1': true, 'din.2': false, x: null };
  for (const message of [a, a, b, a, b, b, { ...b, 'din.2': 'yes' }, a]) assert.deepEqual(onePass(message), general(message));
});

test('a toJSON that encodes another message while a message is being encoded does not corrupt either', () => {
  const inner = { ident: 'inner', timestamp: 5, v: 1 };
  const expectedInner = encodePacket(messageToPacket(inner)).toString('hex');
  let innerBytes = '';
  const outer = {
    ident: 'outer',
    timestamp: 6,
    first: 123,
    nested: {
      toJSON() {
        innerBytes = encodeMessage(inner).toString('hex');
        return { ok: true };
      },
    },
    last: 'text',
  };
  assert.deepEqual(onePass(outer), general(outer));
  assert.equal(innerBytes, expectedInner);
});

test('objects with a prototype of their own (inherited parameters) encode like the general path', () => {
  const proto = { ident: 'inherited', inheritedParam: 7 };
  const message = Object.assign(Object.create(proto) as FlespiMessage, { timestamp: 9, own: 1 });
  assert.deepEqual(onePass(message), general(message));
  const bare = Object.assign(Object.create(null) as FlespiMessage, { ident: 'bare', timestamp: 9, own: 1 });
  assert.deepEqual(onePass(bare), general(bare));
});

test('a getter that encodes another message while the names are read does not corrupt either', () => {
  const inner = { ident: 'inner', timestamp: 5, a: 1, b: 'two', c: true };
  const expectedInner = encodePacket(messageToPacket(inner)).toString('hex');
  let innerBytes = '';
  const outer: FlespiMessage = { ident: 'outer', timestamp: 6, first: 123 };
  Object.defineProperty(outer, 'reads', {
    enumerable: true,
    get() {
      innerBytes = encodeMessage(inner).toString('hex');
      return 42;
    },
  });
  outer.last = 'text';
  assert.deepEqual(onePass(outer), general(outer));
  assert.equal(innerBytes, expectedInner);
});

test('an enumerable property added to Object.prototype is not sent as a parameter', () => {
  const message = { ident: 'u1', timestamp: 7, speed: 3 };
  const clean = onePass(message);
  Object.defineProperty(Object.prototype, 'polluted', { value: 1, enumerable: true, configurable: true, writable: true });
  try {
    assert.deepEqual(onePass(message), clean);
    assert.deepEqual(onePass(message), general(message));
  } finally {
    delete (Object.prototype as Record<string, unknown>).polluted;
  }
});
