/**
 * JSON text of one message for the sinks that forward JSON (stdout, HTTP, MQTT, the extension's
 * NDJSON file), without the ways `JSON.stringify` fails on what a device or a source can send:
 *
 * - Nesting deeper than the call stack (a message nested 6,000 levels parses fine, since JSON.parse
 *   does not recurse, then makes `JSON.stringify` throw "Maximum call stack size exceeded"): written
 *   by a loop with its own stack instead, so the message is forwarded intact, byte for byte what
 *   `JSON.stringify` would have written with a deeper stack.
 * - Values JSON cannot represent (a BigInt, a cycle; only a custom source can produce them) and text
 *   longer than a JavaScript string can hold: `UnserializableError`, an `UndeliverableError`, so the
 *   sink rejects that one message (`ctx.reject`) and forwards the others.
 *
 * Plain messages take the native path; the loop runs only after it threw.
 */
import { UndeliverableError } from '../errors';

/** The message cannot be written as JSON at all; the reason says why, in a user's words. */
export class UnserializableError extends UndeliverableError {
  override readonly name = 'UnserializableError';
}

/** The JSON text of `value` (indented by 2 with `pretty`), as `JSON.stringify` writes it; throws UnserializableError. */
export function messageJson(value: unknown, pretty = false): string {
  let text: string | undefined;
  try {
    text = pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
  } catch (error) {
    if (!isStackOverflow(error)) throw unserializable(error);
    try {
      text = stringifyWithoutRecursion(value, pretty ? '  ' : '');
    } catch (inner) {
      throw unserializable(inner);
    }
  }
  if (text === undefined)
    throw new UnserializableError(
      `the message cannot be written as JSON: it is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}, not a JSON value`,
    );
  return text;
}

/**
 * Calls `write(index, json)` for each message that can be written as JSON and `reject(index, error)`
 * for each that cannot (each message is serialized once).
 */
export function eachMessageJson(
  messages: readonly unknown[],
  pretty: boolean,
  write: (index: number, json: string) => void,
  reject: (index: number, error: UnserializableError) => void,
): void {
  for (let i = 0; i < messages.length; i++) {
    let json: string;
    try {
      json = messageJson(messages[i], pretty);
    } catch (error) {
      reject(i, error as UnserializableError);
      continue;
    }
    write(i, json);
  }
}

/**
 * The messages as one JSON array (what the HTTP sink posts), leaving out those that cannot be written,
 * which go to `reject`; undefined when none is left. One native JSON.stringify when it can (the usual
 * case, as fast as before), else message by message.
 */
export function jsonArray(messages: readonly unknown[], reject: (index: number, error: UnserializableError) => void): string | undefined {
  try {
    return JSON.stringify(messages);
  } catch {
    const parts: string[] = [];
    eachMessageJson(messages, false, (_index, json) => parts.push(json), reject);
    return parts.length === 0 ? undefined : `[${parts.join(',')}]`;
  }
}

/**
 * The messages as JSON lines (each ending in a newline; indented documents with `pretty`), leaving out
 * those that cannot be written, which go to `reject`. Also how many were written.
 */
export function jsonLines(
  messages: readonly unknown[],
  pretty: boolean,
  reject: (index: number, error: UnserializableError) => void,
): { text: string; count: number } {
  try {
    const text = messages.map((m) => (pretty ? JSON.stringify(m, null, 2) : JSON.stringify(m))).join('\n');
    return { text: messages.length > 0 ? `${text}\n` : '', count: messages.length };
  } catch {
    // one of them cannot be written natively: message by message below
  }
  let text = '';
  let count = 0;
  eachMessageJson(
    messages,
    pretty,
    (_index, json) => {
      text += `${json}\n`;
      count++;
    },
    reject,
  );
  return { text, count };
}

function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}

function unserializable(error: unknown): UnserializableError {
  if (error instanceof UnserializableError) return error;
  const text = error instanceof Error ? error.message : String(error);
  let reason: string;
  if (/BigInt/i.test(text)) reason = 'it holds a BigInt, which JSON cannot represent';
  else if (/circular/i.test(text)) reason = 'it refers to itself (a circular structure)';
  else if (error instanceof RangeError && /string length/i.test(text)) reason = 'its JSON text would be longer than a JavaScript string can hold';
  else reason = text.split('\n')[0]!;
  return new UnserializableError(`the message cannot be written as JSON: ${reason}`, { cause: error });
}

class CircularError extends TypeError {
  constructor() {
    super('circular structure');
  }
}

/** One open array or object on the writer's own stack. */
interface Frame {
  readonly container: object;
  /** Property names of an object; undefined for an array. */
  readonly keys: readonly string[] | undefined;
  readonly length: number;
  next: number;
  written: number;
}

/**
 * `JSON.stringify(root, null, indent || undefined)` with a heap stack instead of recursion: the same
 * text for every input (toJSON, boxed primitives, skipped undefined/function/symbol properties, null
 * for them in arrays and for non-finite numbers), TypeError for BigInt and cycles.
 */
export function stringifyWithoutRecursion(root: unknown, indent = ''): string | undefined {
  const out: string[] = [];
  const stack: Frame[] = [];
  const open = new Set<object>();

  /** The value as JSON.stringify sees it after toJSON and unboxing; undefined means "not written". */
  const prepare = (value: unknown, key: string): unknown => {
    if (value !== null && (typeof value === 'object' || typeof value === 'bigint')) {
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') value = toJSON.call(value, key);
    }
    if (value instanceof Number) return Number(value);
    if (value instanceof String) return String(value);
    if (value instanceof Boolean) return value.valueOf();
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    return value;
  };

  /** Writes a prepared value; an array or object is opened (its members follow in the loop). */
  const write = (value: unknown): void => {
    if (value === null) out.push('null');
    else if (typeof value === 'number') out.push(Number.isFinite(value) ? String(value) : 'null');
    else if (typeof value === 'string') out.push(JSON.stringify(value));
    else if (typeof value === 'boolean') out.push(value ? 'true' : 'false');
    else if (typeof value === 'bigint') throw new TypeError('Do not know how to serialize a BigInt');
    else if (typeof value === 'object') {
      if (open.has(value)) throw new CircularError();
      open.add(value);
      const array = Array.isArray(value);
      const keys = array ? undefined : Object.keys(value);
      out.push(array ? '[' : '{');
      stack.push({ container: value, keys, length: keys ? keys.length : (value as unknown[]).length, next: 0, written: 0 });
    }
  };

  const first = prepare(root, '');
  if (first === undefined) return undefined;
  write(first);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.length) {
      if (indent && frame.written > 0) out.push('\n', indent.repeat(stack.length - 1));
      out.push(frame.keys ? '}' : ']');
      open.delete(frame.container);
      stack.pop();
      continue;
    }
    const index = frame.next++;
    const key = frame.keys ? frame.keys[index]! : String(index);
    const value = prepare((frame.container as Record<string, unknown>)[key], key);
    if (value === undefined && frame.keys) continue; // JSON.stringify leaves such properties out
    out.push(frame.written++ > 0 ? ',' : '');
    if (indent) out.push('\n', indent.repeat(stack.length));
    if (frame.keys) out.push(JSON.stringify(key), indent ? ': ' : ':');
    write(value === undefined ? null : value);
  }
  return out.join('');
}
