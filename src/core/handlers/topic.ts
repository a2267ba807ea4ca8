/**
 * MQTT topic templates: `fleet/{channel.id}/{ident}` names one topic per message by filling
 * each `{field}` with that message parameter.
 *
 * A value fills exactly one topic level: `/`, `+`, `#` and NUL in it become `_`, so a device
 * name cannot add levels or turn the topic into a wildcard (which brokers answer by disconnecting).
 * A missing, empty or non-scalar field becomes `unknown` rather than failing the batch: one odd
 * message must not block every message behind it, and it stays findable under `.../unknown/...`.
 */
import type { FlespiMessage } from '../message';
import { ConfigError } from '../options';

export const MISSING_FIELD_VALUE = 'unknown';

export interface TopicTemplate {
  readonly source: string;
  /** The message fields the template reads, in order. */
  readonly fields: readonly string[];
  render(message: FlespiMessage): string;
}

/** Parses a template; `where` (e.g. `handlers[0] (mqtt): "topic"`) prefixes any ConfigError. */
export function parseTopicTemplate(source: string, where: string): TopicTemplate {
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
  return {
    source,
    fields,
    render(message) {
      let topic = literals[0]!;
      for (let i = 0; i < fields.length; i++) topic += topicLevelValue(message[fields[i]!]) + literals[i + 1]!;
      return topic;
    },
  };
}

function topicLevelValue(value: unknown): string {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return MISSING_FIELD_VALUE;
  const text = String(value);
  return text === '' ? MISSING_FIELD_VALUE : text.replace(/[/+#\0]/g, '_');
}
