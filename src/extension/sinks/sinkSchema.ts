/**
 * The options of each sink type in the `flespi.sinks` setting: the core's handler options, less
 * the secret values (kept in SecretStorage, sinkSecrets.ts), plus the keys the extension reads
 * itself. `npm run schemas` writes the setting's JSON schema in package.json from `sinksSettingSchema`;
 * Add Sink's questions (sinkFields.ts) take their options from here. No vscode here.
 */
import { handlerEntryJsonSchema, handlerTypeSchemas, type HandlerTypeSchema } from '../../core/handlers/entrySchema';
import { handlerEntryOptions } from '../../core/handlers/registry';
import { stdoutOptions } from '../../core/handlers/stdout';
import type { JsonSchema, OptionsSchema } from '../../core/optionSchema';

/** The extension's `stdout` sink appends to a file (ndjsonFile.ts): VS Code has no stdout. */
export const ndjsonSinkOptions = {
  file: {
    type: 'string',
    description: 'The NDJSON file to append messages to (relative: to the workspace folder). Default: flespi-output/<name>.ndjson in the workspace.',
  },
  ...stdoutOptions,
} as const satisfies OptionsSchema;

/** Keys of every sink besides its type's options. */
export const sinkEntryOptions = {
  ...handlerEntryOptions,
  name: { type: 'string', required: true, description: 'A unique name; it labels the sink in the Sinks view, logs and the secret storage.' },
} as const satisfies OptionsSchema;

/** What each type's settings hold instead of, or besides, the core's handler options. */
const SETTINGS_OPTIONS: Readonly<Record<string, { title?: string; omit?: readonly string[]; add?: OptionsSchema; replace?: OptionsSchema }>> = {
  stdout: { title: 'Append messages as JSON lines to a file (stdout in the CLI)', replace: ndjsonSinkOptions },
  http: {
    add: {
      secretHeaders: {
        type: 'stringList',
        description: 'Names of headers whose values are kept in VS Code\'s secret storage (set them with "flespi: Add Sink…"), never in settings.',
      },
    },
  },
  mqtt: {
    // The password lives in the secret storage; the setting only says it is there.
    omit: ['password'],
    add: {
      secretPassword: {
        type: 'boolean',
        description: 'true when the MQTT password is kept in VS Code\'s secret storage (set it with "flespi: Add Sink…"). Never put the password in settings.',
      },
    },
  },
  custom: { title: 'Your own handler: a TypeScript class in the workspace' },
};

/** Each sink type with the options its `flespi.sinks` entries may have. */
export function sinkTypeSchemas(): HandlerTypeSchema[] {
  return handlerTypeSchemas().map((t) => {
    const extension = SETTINGS_OPTIONS[t.type] ?? {};
    const options: Record<string, OptionsSchema[string]> = { ...(extension.replace ?? t.options) };
    for (const key of extension.omit ?? []) delete options[key];
    return { type: t.type, title: extension.title ?? t.title, options: { ...options, ...extension.add } };
  });
}

/** The options of one sink type in the settings, and every option its handler takes (secrets too). */
export function sinkOptions(type: string): { settings: OptionsSchema; handler: OptionsSchema } {
  const settings = sinkTypeSchemas().find((t) => t.type === type);
  const handler = handlerTypeSchemas().find((t) => t.type === type);
  if (!settings || !handler) throw new Error(`no sink type "${type}"`);
  return { settings: settings.options, handler: handler.options };
}

/** The `flespi.sinks` property of package.json's `contributes.configuration`. */
export function sinksSettingSchema(): JsonSchema {
  return {
    type: 'array',
    default: [],
    items: handlerEntryJsonSchema(sinkTypeSchemas(), sinkEntryOptions),
    markdownDescription:
      "Where forwarded messages go. Add them with **flespi: Add Sink…**. Certificates are given as file paths; secrets (HTTP auth headers, MQTT passwords) are kept in VS Code's secret storage and only marked here (`secretHeaders`, `secretPassword`).",
  };
}
