/**
 * JSON text for any value a source may hand us, without the ways `JSON.stringify` can throw:
 * nesting deeper than the call stack (a message nested 6,000 deep parses fine, then overflows
 * the stack when stringified), BigInt, and cycles. Plain data takes the fast native path; only
 * when that throws does the iterative writer run, so the common case costs nothing extra.
 */
export function stringifySafely(value: unknown): string {
  try {
    const text = JSON.stringify(value, bigintAsString);
    return text === undefined ? 'null' : text;
  } catch {
    return stringifyIteratively(value);
  }
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** One open array or object on the writer's explicit stack. */
interface Frame {
  readonly container: object;
  readonly keys: readonly (string | number)[];
  readonly array: boolean;
  next: number;
  written: number;
}

/** Like JSON.stringify (no replacer, no indent), but with a heap stack instead of recursion; a cycle becomes "[Circular]". */
function stringifyIteratively(root: unknown): string {
  const out: string[] = [];
  const stack: Frame[] = [];
  const open = new Set<object>();

  const writeValue = (value: unknown): void => {
    if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      value = (value as { toJSON(): unknown }).toJSON();
    }
    if (value === null || value === undefined || typeof value === 'function' || typeof value === 'symbol') out.push('null');
    else if (typeof value === 'number') out.push(Number.isFinite(value) ? String(value) : 'null');
    else if (typeof value === 'bigint') out.push(JSON.stringify(value.toString()));
    else if (typeof value === 'string' || typeof value === 'boolean') out.push(JSON.stringify(value));
    else if (open.has(value)) out.push('"[Circular]"');
    else {
      const array = Array.isArray(value);
      out.push(array ? '[' : '{');
      open.add(value);
      stack.push({ container: value, keys: array ? [...(value as unknown[]).keys()] : Object.keys(value), array, next: 0, written: 0 });
    }
  };

  writeValue(root);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.keys.length) {
      out.push(frame.array ? ']' : '}');
      open.delete(frame.container);
      stack.pop();
      continue;
    }
    const key = frame.keys[frame.next]!;
    const item = (frame.container as Record<string | number, unknown>)[key];
    frame.next += 1;
    const skipped = !frame.array && (item === undefined || typeof item === 'function' || typeof item === 'symbol'); // as JSON.stringify does
    if (skipped) continue;
    if (frame.written++ > 0) out.push(',');
    if (!frame.array) out.push(JSON.stringify(key), ':');
    writeValue(item);
  }
  return out.join('');
}
