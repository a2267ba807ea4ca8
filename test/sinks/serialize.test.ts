import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UndeliverableError } from '../../src/core/errors';
import { messageJson, stringifyWithoutRecursion, UnserializableError } from '../../src/core/handlers/serialize';

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
