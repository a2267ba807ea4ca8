/**
 * The JSON schema of a handler entry (`{ "type": ..., "name"?: ..., ...options }`), generated from
 * the option schemas of the handler types. The CLI's config file schema uses it as is; the
 * extension's `flespi.sinks` setting adds its own keys (secrets markers, the NDJSON file).
 */
import { propertiesJsonSchema, type JsonSchema, type OptionsSchema } from '../optionSchema';
import { builtinHandlerSpecs, customHandlerType, handlerEntryOptions } from './registry';

/** One handler type as a schema sees it. */
export interface HandlerTypeSchema {
  readonly type: string;
  /** One line: shown beside the type in editors. */
  readonly title: string;
  readonly options: OptionsSchema;
}

/** Every handler type a config may name, in pick-list order: the built-ins, then `custom`. */
export function handlerTypeSchemas(): HandlerTypeSchema[] {
  return [...builtinHandlerSpecs.map(({ type, title, options }) => ({ type, title, options })), customHandlerType];
}

/**
 * An object with `type` and the `common` keys (`type` among them), whose other keys are those of
 * its type: one `if type is X then these keys and no others` per type, which editors follow for
 * completion and warnings.
 */
export function handlerEntryJsonSchema(types: readonly HandlerTypeSchema[], common: OptionsSchema = handlerEntryOptions): JsonSchema {
  const { type: typeOption, ...rest } = common;
  if (!typeOption || typeOption.type !== 'string') throw new Error('the common keys of a handler entry must describe "type" as a string');
  const commonOptions: OptionsSchema = {
    type: { ...typeOption, enum: types.map((t) => t.type), enumDescriptions: types.map((t) => t.title) },
    ...rest,
  };
  const { properties, required } = propertiesJsonSchema(commonOptions);
  return {
    type: 'object',
    required,
    properties,
    allOf: types.map((t) => {
      const own = propertiesJsonSchema(t.options);
      return {
        if: { properties: { type: { const: t.type } }, required: ['type'] },
        then: {
          properties: { ...properties, ...own.properties },
          ...(own.required.length ? { required: own.required } : {}),
          additionalProperties: false,
        },
      };
    }),
  };
}
