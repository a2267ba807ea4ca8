/**
 * Settings described once: each option's name, type, description, default, allowed values and
 * whether it is required. Handlers and the config loader read their options through these
 * (`OptionReader.option`), and the JSON schemas (package.json's `flespi.sinks`, the CLI's
 * schemas/flespi-receiver.schema.json) are generated from them by `npm run schemas`.
 * Checks a schema cannot say (a URL's form, settings that go together) stay in the code that reads them.
 */

interface Described {
  readonly description: string;
  /** Absent means optional. */
  readonly required?: boolean;
}

export interface StringOption extends Described {
  readonly type: 'string';
  readonly default?: string;
  readonly enum?: readonly string[];
  /** One per `enum` value, for editors. */
  readonly enumDescriptions?: readonly string[];
  /** What the value must match (a JSON-schema regular expression); the reading code says why in its own words. */
  readonly pattern?: string;
  readonly patternErrorMessage?: string;
  readonly examples?: readonly string[];
}

export interface NumberOption extends Described {
  /** `integer`: whole numbers only. */
  readonly type: 'integer' | 'number';
  readonly default?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  /** Consecutive integers (e.g. 4 and 5): offered as a list, checked as the range they span. */
  readonly enum?: readonly number[];
  readonly examples?: readonly number[];
}

export interface BooleanOption extends Described {
  readonly type: 'boolean';
  readonly default?: boolean;
}

/** An object of string values, e.g. HTTP headers. */
export interface StringMapOption extends Described {
  readonly type: 'stringMap';
}

/** Any JSON object (a custom handler's constructor options). */
export interface ObjectOption extends Described {
  readonly type: 'object';
}

export interface StringListOption extends Described {
  readonly type: 'stringList';
}

export type OptionSchema = StringOption | NumberOption | BooleanOption | StringMapOption | ObjectOption | StringListOption;

/** The options of one settings object, by key. */
export type OptionsSchema = Readonly<Record<string, OptionSchema>>;

type ValueOf<S extends OptionSchema> = S extends StringOption
  ? S extends { enum: readonly (infer E)[] }
    ? E
    : string
  : S extends NumberOption
    ? number
    : S extends BooleanOption
      ? boolean
      : S extends StringMapOption
        ? Record<string, string>
        : S extends StringListOption
          ? string[]
          : Record<string, unknown>;

/** What `OptionReader.option` returns: undefined only for an optional option without a default (a string map is `{}` then). */
export type OptionValue<S extends OptionSchema> = S extends { required: true } | { default: unknown } | StringMapOption ? ValueOf<S> : ValueOf<S> | undefined;

/** The lowest and highest value a number option allows (an `enum` spans its range). */
export function numberRange(option: NumberOption): { min?: number; max?: number; integer: boolean } {
  if (option.enum?.length) return { min: Math.min(...option.enum), max: Math.max(...option.enum), integer: option.type === 'integer' };
  return { min: option.minimum, max: option.maximum, integer: option.type === 'integer' };
}

// ---- JSON schema (draft-07, the dialect VS Code's JSON support understands) ---------------------

export type JsonSchema = { readonly [keyword: string]: unknown };

/** The JSON schema of one option. */
export function optionJsonSchema(option: OptionSchema): JsonSchema {
  const { description } = option;
  switch (option.type) {
    case 'string':
      return omitUndefined({
        type: 'string',
        description,
        enum: option.enum,
        enumDescriptions: option.enumDescriptions,
        default: option.default,
        minLength: option.enum ? undefined : 1,
        pattern: option.pattern,
        patternErrorMessage: option.patternErrorMessage,
        examples: option.examples,
      });
    case 'integer':
    case 'number':
      return omitUndefined({
        type: option.type,
        description,
        enum: option.enum,
        minimum: option.enum ? undefined : option.minimum,
        maximum: option.enum ? undefined : option.maximum,
        default: option.default,
        examples: option.examples,
      });
    case 'boolean':
      return omitUndefined({ type: 'boolean', description, default: option.default });
    case 'stringMap':
      return { type: 'object', description, additionalProperties: { type: 'string' } };
    case 'object':
      return { type: 'object', description };
    case 'stringList':
      return { type: 'array', description, items: { type: 'string', minLength: 1 } };
  }
}

/** `properties` and `required` of an object schema. */
export function propertiesJsonSchema(options: OptionsSchema): { properties: Record<string, JsonSchema>; required: string[] } {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, option] of Object.entries(options)) properties[key] = optionJsonSchema(option);
  return { properties, required: Object.keys(options).filter((key) => options[key]!.required) };
}

/** A closed object: the options listed and nothing else (the readers reject unknown keys too). */
export function objectJsonSchema(options: OptionsSchema, description?: string): JsonSchema {
  const { properties, required } = propertiesJsonSchema(options);
  return omitUndefined({ type: 'object', description, properties, required: required.length ? required : undefined, additionalProperties: false });
}

function omitUndefined(schema: Record<string, unknown>): JsonSchema {
  return Object.fromEntries(Object.entries(schema).filter(([, value]) => value !== undefined));
}
