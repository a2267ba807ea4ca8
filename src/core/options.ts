/**
 * Reading user settings (CLI config files, VS Code settings) with errors that say which
 * setting is wrong and what is expected. Every handler validates its options through these.
 */
import { numberRange, type OptionSchema, type OptionValue } from './optionSchema';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type Options = Readonly<Record<string, unknown>>;

/** Reads typed fields of one settings object; `where` prefixes every error, e.g. `handlers[1] (wialon)`. */
export class OptionReader {
  private readonly seen = new Set<string>();

  constructor(
    readonly options: Options,
    readonly where: string,
  ) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new ConfigError(`${where}: expected an object of settings, got ${describe(options)}`);
    }
  }

  private fail(key: string, expected: string, value: unknown): never {
    throw new ConfigError(`${this.where}: "${key}" must be ${expected}, got ${describe(value)}`);
  }

  private get(key: string): unknown {
    this.seen.add(key);
    return this.options[key];
  }

  has(key: string): boolean {
    return this.options[key] !== undefined;
  }

  string(key: string): string;
  string(key: string, fallback: string): string;
  string(key: string, fallback: undefined): string | undefined;
  string(key: string, ...fallback: [string?]): string | undefined {
    const value = this.get(key);
    if (value === undefined) {
      if (fallback.length) return fallback[0];
      throw new ConfigError(`${this.where}: "${key}" is required`);
    }
    if (typeof value !== 'string' || value === '') this.fail(key, 'a non-empty string', value);
    return value;
  }

  number(key: string, range: { min?: number; max?: number; integer?: boolean }, ...fallback: [number?]): number {
    const value = this.get(key);
    if (value === undefined) {
      if (fallback.length && fallback[0] !== undefined) return fallback[0];
      throw new ConfigError(`${this.where}: "${key}" is required`);
    }
    const kind = range.integer ? 'an integer' : 'a number';
    const bounds =
      range.min !== undefined && range.max !== undefined
        ? ` from ${range.min} to ${range.max}`
        : range.min !== undefined
          ? ` ≥ ${range.min}`
          : range.max !== undefined
            ? ` ≤ ${range.max}`
            : '';
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      (range.integer && !Number.isInteger(value)) ||
      (range.min !== undefined && value < range.min) ||
      (range.max !== undefined && value > range.max)
    ) {
      this.fail(key, kind + bounds, value);
    }
    return value;
  }

  /**
   * A URL with one of `schemes` (e.g. ['https:', 'http:']), without credentials in it.
   * `example` shows the expected form; `credentialsHint` says where credentials go instead.
   */
  url(key: string, schemes: readonly string[], example: string, credentialsHint: string): { text: string; parsed: URL } {
    const text = this.string(key);
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new ConfigError(`${this.where}: "${key}" must be a URL like ${example}, got ${JSON.stringify(text)}`);
    }
    if (!schemes.includes(parsed.protocol))
      throw new ConfigError(`${this.where}: "${key}" must start with ${orList(schemes.map((s) => `${s}//`))}, got ${JSON.stringify(text)}`);
    if (parsed.username || parsed.password) throw new ConfigError(`${this.where}: "${key}" must not contain credentials: ${credentialsHint}`);
    return { text, parsed };
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.get(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(key, 'true or false', value);
    return value;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const value = this.get(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || !allowed.includes(value as T)) this.fail(key, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
    return value as T;
  }

  /** Reads `key` as its schema describes it: type, range, allowed values, default, required. */
  option<S extends OptionSchema>(key: string, schema: S): OptionValue<S> {
    return this.read(key, schema) as OptionValue<S>;
  }

  private read(key: string, schema: OptionSchema): unknown {
    const absent = this.options[key] === undefined;
    if (absent && schema.required) throw new ConfigError(`${this.where}: "${key}" is required`);
    switch (schema.type) {
      case 'string':
        if (schema.enum) return absent && schema.default === undefined ? this.skip(key) : this.oneOf(key, schema.enum, schema.default);
        return schema.default === undefined ? this.string(key, undefined) : this.string(key, schema.default);
      case 'integer':
      case 'number':
        if (absent && schema.default === undefined) return this.skip(key);
        return this.number(key, numberRange(schema), schema.default);
      case 'boolean':
        if (absent && schema.default === undefined) return this.skip(key);
        return this.boolean(key, schema.default ?? false);
      case 'stringMap':
        return this.stringMap(key);
      case 'object': {
        const value = this.get(key);
        if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) this.fail(key, 'an object', value);
        return value;
      }
      case 'stringList': {
        const value = this.get(key);
        if (value !== undefined && (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')))
          this.fail(key, 'a list of non-empty strings', value);
        return value;
      }
    }
  }

  /** Marks an absent optional key as read. */
  private skip(key: string): undefined {
    this.get(key);
    return undefined;
  }

  stringMap(key: string): Record<string, string> {
    const value = this.get(key);
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
      this.fail(key, 'an object of string values', value);
    }
    return { ...(value as Record<string, string>) };
  }

  /** Throws on keys no reader asked for: a typo in a config file should not be silently ignored. */
  rejectUnknown(alsoAllowed: readonly string[] = []): void {
    const unknown = Object.keys(this.options).filter((k) => !this.seen.has(k) && !alsoAllowed.includes(k));
    if (unknown.length) {
      const known = [...this.seen, ...alsoAllowed].sort();
      throw new ConfigError(
        `${this.where}: unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})`,
      );
    }
  }
}

/** "a, b or c" */
function orList(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}` : (items[0] ?? '');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
