/** Export and copy formats of tail messages, without vscode. Generators, so large buffers stream to a file. */
import type { FlespiMessage } from '../../core/message';

/** One JSON object per line. */
export function* ndjsonLines(messages: Iterable<FlespiMessage>): Generator<string> {
  for (const message of messages) yield `${JSON.stringify(message)}\n`;
}

/**
 * RFC 4180 CSV: a header with the union of all keys (in first-seen order), CRLF line ends,
 * fields quoted when they hold a comma, quote or line break. Nested objects become dotted
 * columns; arrays become JSON text.
 */
export function* csvLines(messages: readonly FlespiMessage[]): Generator<string> {
  const rows = messages.map(flatten);
  const columns = new Map<string, number>();
  for (const row of rows) for (const key of row.keys()) if (!columns.has(key)) columns.set(key, columns.size);
  const header = [...columns.keys()];
  yield `${header.map(csvField).join(',')}\r\n`;
  for (const row of rows) yield `${header.map((key) => (row.has(key) ? csvField(row.get(key)) : '')).join(',')}\r\n`;
}

/** One message pretty-printed; several as NDJSON (what a person pastes into an editor or a tool). */
export function clipboardText(messages: readonly FlespiMessage[]): string {
  if (messages.length === 1) return JSON.stringify(messages[0], null, 2);
  return [...ndjsonLines(messages)].join('');
}

function flatten(message: FlespiMessage): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (prefix: string, value: unknown): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
      for (const [key, child] of Object.entries(value)) walk(prefix === '' ? key : `${prefix}.${key}`, child);
    } else {
      out.set(prefix, value);
    }
  };
  for (const [key, value] of Object.entries(message)) walk(key, value);
  return out;
}

/** Spreadsheets run text that starts like a formula; device data must not (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: unknown): string {
  let text: string;
  if (value === undefined || value === null) text = '';
  else if (typeof value === 'string') text = FORMULA_START.test(value) ? `'${value}` : value;
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
