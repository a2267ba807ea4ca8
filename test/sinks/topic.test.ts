// Topic templates of the MQTT and AWS IoT sinks (src/core/handlers/topic.ts): what a bad template is
// told, and each rule that makes a device's field value one valid level, at its exact limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { UndeliverableError } from '../../src/core/errors';
import { parseTopicTemplate } from '../../src/core/handlers/topic';
import { ConfigError } from '../../src/core/options';

const WHERE = 'handlers[0] (mqtt): "topic"';

function refused(source: string, maxBytes?: number): string {
  try {
    parseTopicTemplate(source, WHERE, maxBytes);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`the template ${JSON.stringify(source)} was accepted`);
}

const told = (problem: string, source: string) => `${WHERE}: ${problem} in topic template ${JSON.stringify(source)} (fields look like {ident} or {channel.id})`;
const hash8 = (raw: string) => createHash('sha256').update(raw).digest('hex').slice(0, 8);

test('bad templates are named with the problem and where it is', () => {
  assert.equal(refused(''), told('empty topic', ''));
  assert.equal(refused('a}b{c}'), told('"}" without "{" at position 2', 'a}b{c}'));
  assert.equal(refused('{a}/x}'), told('"}" without "{" at position 6', '{a}/x}'));
  assert.equal(refused('x/{a'), told('"{" without "}" at position 3', 'x/{a'));
  assert.equal(refused('x/{ }'), told('an empty field name "{}"', 'x/{ }'));
  assert.equal(refused('x/{a{b}'), told('a "{" inside field {a{b}', 'x/{a{b}'));
  assert.equal(refused('x/a\0b/{ident}'), told('a NUL character', 'x/a\0b/{ident}'));
  assert.equal(
    refused('x/\u0007/{ident}'),
    told('a control character, noncharacter or lone surrogate, which MQTT topics must not contain,', 'x/\u0007/{ident}'),
  );
});

test('field names are trimmed; a "}" after a field is fine', () => {
  const template = parseTopicTemplate('fleet/{ channel.id }/{ident}', WHERE);
  assert.deepEqual(template.fields, ['channel.id', 'ident']);
  assert.equal(template.render({ 'channel.id': 7, ident: 'car' }), 'fleet/7/car');
});

test('the template must leave each field 16 bytes: exactly at the limit, and one byte over', () => {
  // 20 bytes in all, 4 of text: 16 for the field.
  assert.equal(parseTopicTemplate('abc/{ident}', WHERE, 20).render({ ident: 'x'.repeat(16) }), `abc/${'x'.repeat(16)}`);
  assert.equal(
    refused('abcd/{ident}', 20),
    told('5 bytes of text (leaving less than 16 bytes for each field; topics may have at most 20 bytes here)', 'abcd/{ident}'),
  );
  // Two fields share what is left: 36 - 4 = 32, 16 each.
  assert.deepEqual(parseTopicTemplate('a/{x}/{y}/', WHERE, 36).fields, ['x', 'y']);
  assert.match(refused('ab/{x}/{y}/', 36), /5 bytes of text \(leaving less than 16 bytes for each field/);
  // Without fields only the text counts.
  assert.equal(parseTopicTemplate('t'.repeat(20), WHERE, 20).render({}), 't'.repeat(20));
  assert.equal(refused('t'.repeat(21), 20), told('21 bytes of text (too long; topics may have at most 20 bytes here)', 't'.repeat(21)));
  assert.equal(parseTopicTemplate('abcde', WHERE, 20).render({}), 'abcde');
});

test('values: scalars as text; missing, empty and non-scalar values are "unknown"', () => {
  const template = parseTopicTemplate('d/{v}', WHERE);
  for (const [value, level] of [
    [0, '0'],
    [-1.5, '-1.5'],
    [false, 'false'],
    ['', 'unknown'],
    [undefined, 'unknown'],
    [null, 'unknown'],
    [{ a: 1 }, 'unknown'],
    [[1], 'unknown'],
  ] as const) {
    assert.equal(template.render({ v: value as never }), `d/${level}`, `value ${JSON.stringify(value)}`);
  }
});

test('a value cannot start the topic with $ (only when the template starts with that field)', () => {
  assert.equal(parseTopicTemplate('{a}/x', WHERE).render({ a: '$SYS' }), '_SYS/x');
  assert.equal(parseTopicTemplate('x/{a}', WHERE).render({ a: '$SYS' }), 'x/$SYS');
  assert.equal(parseTopicTemplate('{a}{b}', WHERE).render({ a: 'p', b: '$q' }), 'p$q');
  assert.equal(parseTopicTemplate('{a}{b}', WHERE).render({ a: '$p', b: '$q' }), '_p$q');
  assert.equal(parseTopicTemplate('$aws/{a}', WHERE).render({ a: 'x' }), '$aws/x');
});

test('a long value is cut to its share at a whole character and ends in ~ and its hash; a value that fits is left whole', () => {
  // 40 bytes, 8 of text: a share of 32 bytes.
  const template = parseTopicTemplate('devices/{v}', WHERE, 40);
  const fits = 'a'.repeat(32);
  assert.equal(template.render({ v: fits }), `devices/${fits}`);
  const over = 'a'.repeat(33);
  assert.equal(template.render({ v: over }), `devices/${'a'.repeat(23)}~${hash8(over)}`);
  // Two-byte characters: 16 fit exactly (the quick length check alone would cut them).
  const wide = 'é'.repeat(16);
  assert.equal(template.render({ v: wide }), `devices/${wide}`);
  // 17 do not: 23 bytes leave room for 11 whole ones.
  const wider = 'é'.repeat(17);
  assert.equal(template.render({ v: wider }), `devices/${'é'.repeat(11)}~${hash8(wider)}`);
  for (const v of [over, wider]) assert.equal(Buffer.byteLength(template.render({ v }), 'utf8') <= 40, true);
});

test('a field whose reading throws makes that message undeliverable, naming the field', () => {
  const message = Object.defineProperty({}, 'ident', {
    enumerable: true,
    get() {
      throw new Error('getter failed');
    },
  });
  assert.throws(
    () => parseTopicTemplate('d/{ident}', WHERE).render(message),
    (error: unknown) => error instanceof UndeliverableError && error.message === 'the topic cannot be formed: reading field {ident} failed (getter failed)',
  );
});
