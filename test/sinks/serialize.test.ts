import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UndeliverableError } from '../../src/core/errors';
import { jsonArray, jsonLines, messageJson, stringifyWithoutRecursion, UnserializableError } from '../../src/core/handlers/serialize';

const SEED = Number(process.env.FC_SEED ?? 20261127);

function nested(depth: number): unknown {
  let value: unknown = { leaf: true };
  for (let i = 0; i < depth; i++) value = { level: [value, i] };
  return value;
}

/** The JSON text of nested(depth), built without recursion. */
function nestedJson(depth: number): string {
  let text = '{"leaf":true}';
  for (let i = 0; i < depth; i++) text = `{"level":[${text},${i}]}`;
  return text;
}

test('the loop writes exactly what JSON.stringify writes, compact and indented', () => {
  // Values JSON.stringify handles: everything fc.anything makes but BigInt (and the boxed and toJSON cases below).
  const value = fc.anything({
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withTypedArray: true,
    withSparseArray: true,
    withNullPrototype: true,
    withObjectString: true,
    maxDepth: 6,
  });
  fc.assert(
    fc.property(value, (v) => {
      assert.equal(stringifyWithoutRecursion(v), JSON.stringify(v));
      assert.equal(stringifyWithoutRecursion(v, '  '), JSON.stringify(v, null, 2));
    }),
    { seed: SEED, numRuns: 300 },
  );
  const odd = {
    a: undefined,
    f: () => 1,
    s: Symbol('x'),
    n: NaN,
    i: -Infinity,
    z: -0,
    arr: [undefined, () => 1, NaN],
    d: new Date(0),
    o: { toJSON: (key: string) => `key ${key}` },
    e: {},
    ea: [],
  };
  assert.equal(stringifyWithoutRecursion(odd, '  '), JSON.stringify(odd, null, 2));
  assert.equal(stringifyWithoutRecursion(undefined), undefined);
});

test('a message nested 6,000 deep is written whole, compact and indented, where JSON.stringify overflows the stack', () => {
  const deep = { ident: 'deep', payload: nested(6000) };
  assert.throws(() => JSON.stringify(deep), /Maximum call stack size exceeded/);
  assert.equal(messageJson(deep), `{"ident":"deep","payload":${nestedJson(6000)}}`);
  const pretty = messageJson(deep, true);
  assert.equal(pretty.replace(/\n */g, '').replace(/": /g, '":'), `{"ident":"deep","payload":${nestedJson(6000)}}`);
  assert.ok(pretty.startsWith('{\n  "ident": "deep",\n  "payload": {\n    "level": [\n      {'));
  assert.ok(pretty.includes(`\n${'  '.repeat(2 + 2 * 6000)}"leaf": true\n`), 'indented by 2 per object and per array');
});

test('BigInt and cycles are UnserializableError (an UndeliverableError) saying why', () => {
  const cyclic: Record<string, unknown> = { ident: 'c' };
  cyclic.self = cyclic;
  for (const [value, reason] of [
    [{ ident: 'b', big: 10n ** 30n }, /holds a BigInt/],
    [cyclic, /refers to itself/],
    [{ ident: 'deep-big', payload: nested(6000), big: 1n }, /holds a BigInt/],
  ] as const) {
    const error = (() => {
      try {
        messageJson(value);
      } catch (e) {
        return e;
      }
      assert.fail('serialized');
    })();
    assert.ok(error instanceof UnserializableError && error instanceof UndeliverableError);
    assert.match(error.message, /^the message cannot be written as JSON: /);
    assert.match(error.message, reason);
  }
  // A cycle hidden under 6,000 levels is found by the loop, too.
  const deep = nested(6000) as { level: unknown[] };
  let inner = deep;
  while (Array.isArray(inner.level) && typeof inner.level[0] === 'object' && 'level' in (inner.level[0] as object)) inner = inner.level[0] as typeof deep;
  inner.level.push(deep);
  assert.throws(() => messageJson(deep), /refers to itself/);
});

/** The error messageJson throws for `value`. */
function refusal(value: unknown): UnserializableError {
  try {
    messageJson(value);
  } catch (error) {
    assert.ok(error instanceof UnserializableError);
    return error;
  }
  assert.fail('serialized');
}

test('what is not a JSON value, and errors from toJSON, are named in full', () => {
  assert.equal(refusal(undefined).message, 'the message cannot be written as JSON: it is undefined, not a JSON value');
  assert.equal(refusal(() => 1).message, 'the message cannot be written as JSON: it is a function, not a JSON value');
  assert.equal(refusal(Symbol('s')).message, 'the message cannot be written as JSON: it is a symbol, not a JSON value');
  assert.equal(refusal(undefined).name, 'UnserializableError');
  const throwing = (error: Error) => ({
    toJSON: () => ({
      bad: {
        toJSON: () => {
          throw error;
        },
      },
    }),
  });
  assert.equal(refusal(throwing(new Error('first line\nsecond line'))).message, 'the message cannot be written as JSON: first line');
  assert.equal(
    refusal(throwing(new RangeError('Invalid string length'))).message,
    'the message cannot be written as JSON: its JSON text would be longer than a JavaScript string can hold',
  );
  // Only a RangeError says the text is too long; a RangeError that is no stack overflow is not retried by the loop.
  assert.equal(refusal(throwing(new TypeError('Invalid string length'))).message, 'the message cannot be written as JSON: Invalid string length');
  let calls = 0;
  const once = {
    toJSON: () => {
      calls++;
      throw new RangeError('out of range');
    },
  };
  assert.equal(refusal(once).message, 'the message cannot be written as JSON: out of range');
  assert.equal(calls, 1);
});

test('the loop calls toJSON of the root and of nested objects with their key, as JSON.stringify does', () => {
  const keyed = { toJSON: (key: string) => `key=${key}` };
  const value = { date: new Date(0), keyed, list: [keyed] };
  assert.equal(stringifyWithoutRecursion(value), JSON.stringify(value));
  assert.equal(stringifyWithoutRecursion(value), '{"date":"1970-01-01T00:00:00.000Z","keyed":"key=keyed","list":["key=0"]}');
  assert.equal(stringifyWithoutRecursion(keyed), '"key="');
});

test('jsonLines and jsonArray: nothing for no messages, one line each, compact around a message left out', () => {
  const rejected: number[] = [];
  const reject = (index: number) => rejected.push(index);
  assert.deepEqual(jsonLines([], false, reject), { text: '', count: 0 });
  assert.deepEqual(jsonLines([{ a: 1 }, { b: 2 }], false, reject), { text: '{"a":1}\n{"b":2}\n', count: 2 });
  assert.deepEqual(jsonLines([{ a: 1 }], true, reject), { text: '{\n  "a": 1\n}\n', count: 1 });
  assert.deepEqual(jsonLines([{ a: { b: 1 } }, { big: 1n }, { c: 3 }], false, reject), { text: '{"a":{"b":1}}\n{"c":3}\n', count: 2 });
  assert.equal(jsonArray([{ a: { b: 1 } }, { big: 1n }, { c: [3] }], reject), '[{"a":{"b":1}},{"c":[3]}]');
  assert.equal(jsonArray([{ big: 1n }], reject), undefined);
  assert.deepEqual(rejected, [1, 1, 0]);
});

test('a BigInt with a toJSON of its own (a common polyfill) is written through it, natively and by the loop', () => {
  const proto = BigInt.prototype as unknown as { toJSON?: () => string };
  proto.toJSON = function (this: bigint) {
    return this.toString();
  };
  try {
    assert.equal(messageJson({ id: 12n }), '{"id":"12"}');
    assert.equal(stringifyWithoutRecursion({ id: 12n, list: [3n] }), '{"id":"12","list":["3"]}');
  } finally {
    delete proto.toJSON;
  }
});
