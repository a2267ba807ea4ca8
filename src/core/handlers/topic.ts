/**
 * MQTT topic templates: `fleet/{channel.id}/{ident}` names one topic per message by filling
 * each `{field}` with that message parameter.
 *
 * The template is the user's and is checked once, when the settings are read (ConfigError). The
 * field values are a device's, so each is made into a valid topic level, whatever it holds: one odd
 * message must neither block every message behind it nor vanish. Per MQTT 3.1.1 §1.5.3, §4.7 and
 * MQTT 5 §1.5.4, §4.7 (and the limits of AWS IoT Core):
 *
 * - A value fills exactly one level: `/`, `+` and `#` become `_`, so a device name cannot add levels
 *   or turn the topic into a wildcard (which brokers answer by disconnecting).
 * - Characters a topic must not or should not hold become `_`: control characters (C0 including NUL,
 *   DEL, C1), noncharacters (U+FFFE, U+FFFF, U+FDD0–U+FDEF, ...) and lone surrogates, which are not
 *   UTF-8 at all. Mosquitto drops the connection of a client that sends them, on every attempt.
 * - A value that would start the topic with `$` gets `_` instead: topics starting with `$` belong to
 *   the broker (`$SYS`, `$share`, AWS's `$aws`), and no subscriber to `#` ever receives a message
 *   published there. A `$` the template itself starts with (`$aws/rules/...`) is left alone.
 * - The topic stays within `maxBytes` of UTF-8 (65,535 for MQTT, 256 for AWS IoT): each field gets an
 *   equal share of what the template's literal text leaves, and a longer value is cut to its share
 *   and ends in `~` and 8 hex digits of a hash of the whole value. The same value always gives the
 *   same level, whatever the other fields hold, and two long values that differ only after the cut
 *   still get different topics.
 * - A missing, empty or non-scalar field becomes `unknown`, findable under `.../unknown/...`.
 */
import { createHash } from 'node:crypto';
import { UndeliverableError } from '../errors';
import type { FlespiMessage } from '../message';
import { ConfigError } from '../options';

export const MISSING_FIELD_VALUE = 'unknown';
/** The most UTF-8 bytes an MQTT topic name can have (its length is a 16-bit field). */
export const MAX_MQTT_TOPIC_BYTES = 65_535;
/** AWS IoT Core's limit on a topic name's UTF-8 bytes. */
export const MAX_AWS_TOPIC_BYTES = 256;
/** `~` and 8 hex digits, at the end of a shortened value. */
const HASH_SUFFIX_BYTES = 9;
/** Each field gets at least this share of the topic, or the template is refused as too long. */
const MIN_FIELD_BYTES = 16;

/** Characters a topic name must not hold, or should not (MQTT 3.1.1 §1.5.3, MQTT 5 §1.5.4). */
const NOT_IN_TOPIC = /[\p{Cc}\p{Noncharacter_Code_Point}\p{Cs}]/u;
/** What a field value must not bring into its level: the above, plus level separator and wildcards. */
const REPLACED_IN_VALUE = /[/+#\p{Cc}\p{Noncharacter_Code_Point}\p{Cs}]/gu;

export interface TopicTemplate {
  readonly source: string;
  /** The message fields the template reads, in order. */
  readonly fields: readonly string[];
  /** Most UTF-8 bytes a rendered topic has. */
  readonly maxBytes: number;
  /** The topic of a message; throws UndeliverableError when none can be formed for it. */
  render(message: FlespiMessage): string;
}

/** Parses a template; `where` (e.g. `handlers[0] (mqtt): "topic"`) prefixes any ConfigError. */
export function parseTopicTemplate(source: string, where: string, maxBytes = MAX_MQTT_TOPIC_BYTES): TopicTemplate {
  const fail = (problem: string): never => {
    throw new ConfigError(`${where}: ${problem} in topic template ${JSON.stringify(source)} (fields look like {ident} or {channel.id})`);
  };
  if (source === '') fail('empty topic');
  const literals: string[] = [];
  const fields: string[] = [];
  let rest = source;
  while (true) {
    const open = rest.indexOf('{');
    const close = rest.indexOf('}');
    if (close !== -1 && (open === -1 || close < open)) fail(`"}" without "{" at position ${source.length - rest.length + close + 1}`);
    if (open === -1) break;
    const end = rest.indexOf('}', open);
    if (end === -1) fail(`"{" without "}" at position ${source.length - rest.length + open + 1}`);
    const name = rest.slice(open + 1, end).trim();
    if (name === '') fail('an empty field name "{}"');
    if (name.includes('{')) fail(`a "{" inside field {${name}}`);
    literals.push(rest.slice(0, open));
    fields.push(name);
    rest = rest.slice(end + 1);
  }
  literals.push(rest);
  const literalText = literals.join('');
  if (/[+#]/.test(literalText)) fail('an MQTT wildcard ("+" or "#"), which a published topic must not contain,');
  if (literalText.includes('\0')) fail('a NUL character');
  if (NOT_IN_TOPIC.test(literalText)) fail('a control character, noncharacter or lone surrogate, which MQTT topics must not contain,');
  const literalBytes = Buffer.byteLength(literalText, 'utf8');
  const fieldBytes = fields.length === 0 ? 0 : Math.floor((maxBytes - literalBytes) / fields.length);
  if (literalBytes > maxBytes || (fields.length > 0 && fieldBytes < MIN_FIELD_BYTES)) {
    fail(
      `${literalBytes} bytes of text (${fields.length ? `leaving less than ${MIN_FIELD_BYTES} bytes for each field` : 'too long'}; topics may have at most ${maxBytes} bytes here)`,
    );
  }
  /** The template starts with a field: that field's value must not make the topic start with `$`. */
  const fieldFirst = fields.length > 0 && literals[0] === '';
  return {
    source,
    fields,
    maxBytes,
    render(message) {
      let topic = literals[0]!;
      for (let i = 0; i < fields.length; i++) {
        let value: unknown;
        try {
          value = message[fields[i]!];
        } catch (error) {
          throw new UndeliverableError(
            `the topic cannot be formed: reading field {${fields[i]}} failed (${error instanceof Error ? error.message : String(error)})`,
            { cause: error },
          );
        }
        topic += topicLevelValue(value, fieldBytes, fieldFirst && i === 0) + literals[i + 1]!;
      }
      return topic;
    },
  };
}

/** A field value as (part of) one valid topic level of at most `maxBytes` UTF-8 bytes. */
function topicLevelValue(value: unknown, maxBytes: number, startsTopic: boolean): string {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return MISSING_FIELD_VALUE;
  const raw = String(value);
  if (raw === '') return MISSING_FIELD_VALUE;
  let text = raw.replace(REPLACED_IN_VALUE, '_');
  if (startsTopic && text.startsWith('$')) text = `_${text.slice(1)}`;
  // Every UTF-16 unit is at most 3 UTF-8 bytes, so short values need no counting.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  return `${utf8Prefix(text, maxBytes - HASH_SUFFIX_BYTES)}~${createHash('sha256').update(raw).digest('hex').slice(0, 8)}`;
}

/** The longest prefix of `text` (whole code points) within `maxBytes` of UTF-8. */
function utf8Prefix(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}
