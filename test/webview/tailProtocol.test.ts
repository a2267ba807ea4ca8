import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIMITS, checkWebviewMessage, type WebviewMessage } from '../../src/shared/tailProtocol';

/** The accepted command, or undefined when the gate refuses it. */
function parseWebviewMessage(value: unknown): WebviewMessage | undefined {
  const checked = checkWebviewMessage(value);
  return checked.ok ? checked.value : undefined;
}

test('every valid command parses to a fresh object with only its known fields', () => {
  const valid: Array<[unknown, WebviewMessage]> = [
    [{ type: 'ready' }, { type: 'ready' }],
    [{ type: 'pause', extra: 1 }, { type: 'pause' }],
    [{ type: 'resume' }, { type: 'resume' }],
    [{ type: 'stop' }, { type: 'stop' }],
    [{ type: 'restart' }, { type: 'restart' }],
    [
      { type: 'setFilter', expression: 'position.speed>60' },
      { type: 'setFilter', expression: 'position.speed>60' },
    ],
    [
      { type: 'setFilter', expression: '' },
      { type: 'setFilter', expression: '' },
    ],
    [
      { type: 'forward', ids: [0, 1, 2 ** 40], token: 'x' },
      { type: 'forward', ids: [0, 1, 2 ** 40] },
    ],
    [
      { type: 'copy', ids: [7] },
      { type: 'copy', ids: [7] },
    ],
    [
      { type: 'export', scope: 'buffer', format: 'csv', ids: 'ignored' },
      { type: 'export', scope: 'buffer', format: 'csv' },
    ],
    [
      { type: 'export', scope: 'selection', format: 'ndjson', ids: [3, 4] },
      { type: 'export', scope: 'selection', format: 'ndjson', ids: [3, 4] },
    ],
    [
      { type: 'setColumns', columns: ['ident', 'position'] },
      { type: 'setColumns', columns: ['ident', 'position'] },
    ],
    [
      { type: 'openLink', id: 3, path: '/etc/passwd' },
      { type: 'openLink', id: 3 },
    ],
  ];
  for (const [input, expected] of valid) {
    const parsed = parseWebviewMessage(input);
    assert.deepEqual(parsed, expected, JSON.stringify(input));
    assert.notEqual(parsed, input, 'a copy, not the untrusted object itself');
  }
  const ids = [1, 2, 3];
  const parsed = parseWebviewMessage({ type: 'forward', ids }) as { ids: number[] };
  ids.push(-1);
  assert.deepEqual(parsed.ids, [1, 2, 3], 'the ids are copied too');
});

test('malformed and hostile commands are rejected with a reason', () => {
  const invalid: Array<[unknown, RegExp]> = [
    [undefined, /expected an object, got undefined/],
    [null, /got null/],
    ['ready', /got a string/],
    [[{ type: 'ready' }], /got an array/],
    [{}, /"type" must be a string/],
    [{ type: 42 }, /"type" must be a string, got 42/],
    [{ type: 'drop-table' }, /unknown command type "drop-table"/],
    [{ type: 'constructor' }, /unknown command type/],
    [{ type: '__proto__' }, /unknown command type/],
    [{ type: 'setFilter' }, /expression must be a string, got undefined/],
    [{ type: 'setFilter', expression: { toString: 1 } }, /expression must be a string, got an object/],
    [{ type: 'setFilter', expression: 'x'.repeat(LIMITS.filterLength + 1) }, /at most 1024/],
    [{ type: 'forward' }, /ids must be an array/],
    [{ type: 'forward', ids: [] }, /empty/],
    [{ type: 'forward', ids: [1, -1] }, /non-negative integers, got -1/],
    [{ type: 'forward', ids: [1.5] }, /got 1.5/],
    [{ type: 'forward', ids: [NaN] }, /got NaN/],
    [{ type: 'forward', ids: [Infinity] }, /got Infinity/],
    [{ type: 'forward', ids: [2 ** 53] }, /non-negative integers/],
    [{ type: 'copy', ids: ['1'] }, /got a string of 1 characters/],
    [{ type: 'copy', ids: [null] }, /got null/],
    [{ type: 'copy', ids: { length: 1, 0: 1 } }, /must be an array/],
    [{ type: 'copy', ids: new Array(LIMITS.ids + 1).fill(1) }, /at most 1000000/],
    [{ type: 'export', scope: 'buffer' }, /format must be "ndjson" or "csv", got undefined/],
    [{ type: 'export', scope: 'buffer', format: 'xlsx' }, /format must be/],
    [{ type: 'export', scope: 'all', format: 'csv' }, /scope must be "selection" or "buffer"/],
    [{ type: 'export', scope: 'selection', format: 'csv' }, /export.ids must be an array/],
    [{ type: 'setColumns', columns: 'ident' }, /columns must be an array/],
    [{ type: 'openLink', id: '/etc/passwd' }, /openLink.id must be a positive integer/],
    [{ type: 'openLink', id: 0 }, /openLink.id must be a positive integer/],
    [{ type: 'openLink', id: 1.5 }, /openLink.id must be a positive integer/],
    [{ type: 'setColumns', columns: [''] }, /non-empty strings/],
    [{ type: 'setColumns', columns: ['x'.repeat(LIMITS.columnNameLength + 1)] }, /non-empty strings/],
    [{ type: 'setColumns', columns: [1] }, /got 1/],
    [{ type: 'setColumns', columns: new Array(LIMITS.columns + 1).fill('a') }, /at most 200/],
  ];
  for (const [input, reason] of invalid) {
    assert.equal(parseWebviewMessage(input), undefined, `accepted ${String(JSON.stringify(input)).slice(0, 80)}`);
    const checked = checkWebviewMessage(input);
    assert.equal(checked.ok, false);
    if (!checked.ok) assert.match(checked.error, reason);
  }
});

test('a __proto__ key in a command neither pollutes nor survives', () => {
  const hostile = JSON.parse('{"type":"forward","ids":[1],"__proto__":{"polluted":true}}') as unknown;
  const parsed = parseWebviewMessage(hostile) as Record<string, unknown>;
  assert.deepEqual(parsed, { type: 'forward', ids: [1] });
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('fuzz: random values never throw, and whatever is accepted is well formed', () => {
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)];
  const types = ['ready', 'pause', 'resume', 'stop', 'restart', 'setFilter', 'forward', 'copy', 'export', 'setColumns', 'other', ''];
  const scalar = (): unknown =>
    pick([
      () => undefined,
      () => null,
      () => true,
      () => Math.floor(random() * 100) - 10,
      () => random() * 1e6,
      () => NaN,
      () => -Infinity,
      () => 'x'.repeat(Math.floor(random() * 1100)),
      () => pick(['csv', 'ndjson', 'buffer', 'selection', '']),
    ])();
  const value = (depth: number): unknown => {
    const r = random();
    if (depth > 2 || r < 0.5) return scalar();
    if (r < 0.75) return Array.from({ length: Math.floor(random() * 6) }, () => (random() < 0.7 ? Math.floor(random() * 50) - 5 : value(depth + 1)));
    const object: Record<string, unknown> = {};
    for (const key of ['type', 'ids', 'expression', 'scope', 'format', 'columns', 'extra'])
      if (random() < 0.6) object[key] = key === 'type' && random() < 0.8 ? pick(types) : value(depth + 1);
    return object;
  };
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const input = value(0);
    const parsed = parseWebviewMessage(input);
    if (!parsed) continue;
    accepted++;
    assert.ok(types.slice(0, 10).includes(parsed.type));
    if ('ids' in parsed) {
      assert.ok(parsed.ids.length > 0 && parsed.ids.length <= LIMITS.ids);
      for (const id of parsed.ids) assert.ok(Number.isSafeInteger(id) && id >= 0);
    }
    if (parsed.type === 'setFilter') assert.ok(typeof parsed.expression === 'string' && parsed.expression.length <= LIMITS.filterLength);
    if (parsed.type === 'setColumns') for (const c of parsed.columns) assert.ok(typeof c === 'string' && c.length > 0 && c.length <= LIMITS.columnNameLength);
    if (parsed.type === 'export') assert.ok(['ndjson', 'csv'].includes(parsed.format) && ['selection', 'buffer'].includes(parsed.scope));
  }
  assert.ok(accepted > 100, `the fuzzer should also produce valid commands (got ${accepted})`);
});
