import { HandlerLoadError, loadHandlerClass } from '../custom/loader';
import { undeliverablePolicies, type Handler, type UndeliverablePolicy } from '../handler';
import type { OptionsSchema } from '../optionSchema';
import { ConfigError, OptionReader, type Options } from '../options';
import type { HandlerEnv, HandlerSpec } from './spec';
import { httpSpec } from './http';
import { awsIotSpec, mqttSpec } from './mqtt';
import { stdoutSpec } from './stdout';
import { wialonSpec } from './wialon';

/** The built-in handler types, in the order pick lists show them. */
export const builtinHandlerSpecs: readonly HandlerSpec[] = [stdoutSpec, httpSpec, mqttSpec, awsIotSpec, wialonSpec];

/** Every `type` a handler entry may have: the built-ins plus `custom` (your own class in a .ts/.js file). */
export const handlerTypes: readonly string[] = [...builtinHandlerSpecs.map((s) => s.type), 'custom'];

/** `type: "custom"`: what it is and its options; the registry builds it itself (below). */
export const customHandlerType = {
  type: 'custom',
  title: "Your own handler: a class extending Handler from 'flespi-receiver', default-exported from a .ts or .js file",
  options: {
    file: {
      type: 'string',
      required: true,
      description:
        "The handler file (.ts or .js), relative to the config file (or the workspace folder); its default export extends Handler from 'flespi-receiver'.",
    },
    options: { type: 'object', description: "Passed to the handler's constructor." },
  },
} as const satisfies { type: string; title: string; options: OptionsSchema };

/** The keys of every handler entry, besides its type's options. */
export const handlerEntryOptions = {
  type: { type: 'string', required: true, enum: handlerTypes, description: 'What the handler does with the messages.' },
  name: { type: 'string', description: 'Labels status lines, logs and dead letters; unique among the handlers (default: the type).' },
  onUndeliverable: {
    type: 'string',
    enum: undeliverablePolicies,
    enumDescriptions: [
      'Keep a message this handler can never take as a dead letter (with why) and go on with the rest',
      'Stop with the error; the batch stays unacknowledged until you fix the cause',
      'Retry it forever, holding up the channel behind it',
    ],
    default: 'dead-letter',
    description: 'What happens to a message this handler can never deliver (it cannot be encoded, the endpoint refuses it for good, it is too large).',
  },
} as const satisfies OptionsSchema;

export function handlerSpec(type: string): HandlerSpec | undefined {
  return builtinHandlerSpecs.find((s) => s.type === type);
}

/**
 * Builds one handler from a configuration entry `{ "type": ..., "name"?: ..., "onUndeliverable"?: ..., ...options }`.
 * `custom` entries are `{ "type": "custom", "file": "path/to/MyHandler.ts", "options"?: {...} }`:
 * the file's default export (a Handler subclass) is constructed with `options`.
 * `where` names the entry in errors, e.g. `receiver.json: handlers[1]`.
 */
export async function createHandler(entry: Options, env: HandlerEnv, where: string): Promise<Handler> {
  const reader = new OptionReader(entry, where);
  const type = reader.option('type', handlerEntryOptions.type);
  const policy: UndeliverablePolicy = reader.option('onUndeliverable', handlerEntryOptions.onUndeliverable);
  const handler = await buildHandler(entry, env, where, type);
  handler.onUndeliverable = policy;
  return handler;
}

async function buildHandler(entry: Options, env: HandlerEnv, where: string, type: string): Promise<Handler> {
  const name = new OptionReader(entry, where).option('name', handlerEntryOptions.name) ?? type;
  const label = `${where} (${type})`;
  if (type === 'custom') {
    const file = new OptionReader(entry, label).option('file', customHandlerType.options.file);
    const options = entry.options === undefined ? {} : entry.options;
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new ConfigError(`${label}: "options" must be an object of settings for your handler's constructor`);
    }
    new OptionReader(entry, label).rejectUnknown(['type', 'name', 'file', 'options', 'onUndeliverable']);
    const HandlerClass = await loadHandlerClass(env.resolvePath(file)).catch((error: unknown) => {
      throw error instanceof HandlerLoadError ? new HandlerLoadError(`${label}: ${error.message}`, error.file, error.location, { cause: error }) : error;
    });
    let handler: Handler;
    try {
      handler = new HandlerClass({ ...(options as Record<string, unknown>) });
    } catch (error) {
      throw new ConfigError(
        `${label}: the constructor of ${HandlerClass.name || 'the handler class'} in ${file} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    // The entry's name wins over the class name, so two instances of one class can be told apart.
    // A class without its own constructor passes the options on to Handler's `name` parameter: use the class name then.
    if (entry.name !== undefined) (handler as { name: string }).name = name;
    else if (typeof handler.name !== 'string') (handler as { name: string }).name = HandlerClass.name || 'custom';
    return handler;
  }
  const spec = handlerSpec(type)!;
  const { type: _type, name: _name, onUndeliverable: _policy, ...options } = entry;
  try {
    return spec.create(options, env, name);
  } catch (error) {
    if (error instanceof ConfigError && !error.message.startsWith(where)) throw new ConfigError(`${where}: ${error.message}`);
    throw error;
  }
}

/** Builds every handler of a configuration; names must be unique (they label status and errors). */
export async function createHandlers(entries: readonly Options[], env: HandlerEnv, where = 'handlers'): Promise<Handler[]> {
  const handlers: Handler[] = [];
  const names = new Map<string, number>();
  for (const [index, entry] of entries.entries()) {
    const handler = await createHandler(entry, env, `${where}[${index}]`);
    const other = names.get(handler.name);
    if (other !== undefined) {
      throw new ConfigError(`${where}[${index}]: another handler (${where}[${other}]) is named "${handler.name}" too: give one of them a different "name"`);
    }
    names.set(handler.name, index);
    handlers.push(handler);
  }
  return handlers;
}
