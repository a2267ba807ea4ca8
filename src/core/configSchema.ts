/**
 * The options of the CLI's config file (`flespi-receiver run receiver.flespi.json`), section by
 * section: config.ts reads each section through these, and `npm run schemas` writes the file's JSON
 * schema (schemas/flespi-receiver.schema.json) from them and from the handler types' own options.
 */
import { MAX_POLL_TIMEOUT_S } from './flespi/client';
import { handlerEntryJsonSchema, handlerTypeSchemas } from './handlers/entrySchema';
import { objectJsonSchema, optionJsonSchema, type JsonSchema, type OptionsSchema } from './optionSchema';
import { DEFAULT_DEAD_LETTER_MAX_BYTES } from './receiver/deadLetters';

/** Where the JSON schema of the config file is, in this repository, the VSIX and the npm package. */
export const CONFIG_SCHEMA_PATH = 'schemas/flespi-receiver.schema.json';
/** The config file names VS Code checks against that schema (package.json `jsonValidation`); the README recommends them. */
export const CONFIG_FILE_PATTERNS = ['flespi-receiver.json', '*.flespi.json'] as const;

export const topLevelOptions = {
  $schema: { type: 'string', description: 'The JSON schema of this file, for editors (ignored by flespi-receiver).' },
  channel: { type: 'integer', required: true, minimum: 1, description: 'The id of the flespi channel to read.' },
  checkpoint: {
    type: 'string',
    description:
      'Where the position is kept (default: <config name>.channel-<id>.checkpoint.json next to the config). Delete it to start from startKey again. Give a second receiver of the channel its own.',
  },
} as const satisfies OptionsSchema;

export const flespiOptions = {
  region: { type: 'string', enum: ['eu', 'ru'], default: 'eu', description: 'The flespi region (or give baseUrl instead).' },
  baseUrl: {
    type: 'string',
    pattern: '^https?://[^/]+',
    patternErrorMessage: 'An http:// or https:// URL, such as https://flespi.io.',
    examples: ['https://flespi.io'],
    description: "The REST server instead of a region's, e.g. a sandbox's http://127.0.0.1:<port>.",
  },
  tokenFile: {
    type: 'string',
    description:
      'A file holding the flespi token (chmod 600: a warning when other users can read it). FLESPI_TOKEN wins over it. Never put the token itself in this file.',
  },
  timeoutMs: {
    type: 'integer',
    minimum: 1000,
    maximum: 600_000,
    default: 40_000,
    description: "How long a request may take to its last byte, on top of a long-poll's wait (ms).",
  },
} as const satisfies OptionsSchema;

const sourceType = {
  type: 'string',
  enum: ['rest', 'mqtt'],
  enumDescriptions: [
    'Read the channel buffer by key with REST long-polls (resumes exactly from the checkpoint)',
    "Receive live over flespi's MQTT broker with a persistent session",
  ],
  default: 'rest',
  description: 'How messages are read.',
} as const;

export const restSourceOptions = {
  type: sourceType,
  limitCount: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1000, description: 'Messages per batch.' },
  limitSize: { type: 'integer', minimum: 1, maximum: 100_000_000, description: 'Bytes per batch.' },
  timeout: { type: 'integer', minimum: 1, maximum: MAX_POLL_TIMEOUT_S, default: 20, description: 'Long-poll wait (seconds).' },
  delete: {
    type: 'boolean',
    default: false,
    description: 'Delete messages from the channel buffer once every handler accepted them (only for a single reader).',
  },
  startKey: {
    type: 'integer',
    minimum: 0,
    default: 0,
    description: 'Where the first run starts (0: the oldest message); later runs resume from the checkpoint.',
  },
  read: {
    type: 'string',
    enum: ['auto', 'key', 'time'],
    default: 'auto',
    description: 'Read by key, by server.timestamp, or by key unless flespi refuses it (auto).',
  },
  bufferLimitMB: {
    type: 'number',
    minimum: 0.001,
    maximum: 1_000_000,
    description: "The channel buffer of the account's plan (default 100, a free account's): a warning when the buffer nears it.",
  },
} as const satisfies OptionsSchema;

export const mqttSourceOptions = {
  type: sourceType,
  url: {
    type: 'string',
    pattern: '^(mqtts?|wss?)://[^/]+',
    patternErrorMessage: 'An MQTT URL such as mqtts://mqtt.flespi.io:8883.',
    examples: ['mqtts://mqtt.flespi.io:8883'],
    description: "The broker (default: the region's; required with flespi.baseUrl).",
  },
  gapFill: { type: 'boolean', default: true, description: "After a lost session or a session buffer overflow, read the gap over REST up to flespi's clock." },
  group: { type: 'string', description: 'Shared subscription: receivers in one group split the stream.' },
  filter: { type: 'string', description: 'A flespi expression the broker evaluates for each message.' },
  clientId: {
    type: 'string',
    description:
      'MQTT client id (default: derived from the host and the checkpoint path, so each config has its own session). Never give two receivers the same one.',
  },
  protocolVersion: { type: 'integer', enum: [4, 5], description: 'MQTT protocol version: 4 (3.1.1) or 5.' },
  batchMaxMessages: { type: 'integer', minimum: 1, maximum: 100_000, description: 'Most messages per batch.' },
  batchMaxWaitMs: { type: 'integer', minimum: 0, maximum: 60_000, description: 'How long a batch waits for more messages (ms).' },
  maxUnacked: { type: 'integer', minimum: 1, maximum: 1_000_000, description: 'Most messages received and not yet acknowledged.' },
  sessionExpirySeconds: {
    type: 'integer',
    minimum: 0,
    maximum: 4_294_967_295,
    description: 'How long the broker keeps the session while the receiver is away.',
  },
  keepaliveSeconds: { type: 'integer', minimum: 0, maximum: 65_535, description: 'MQTT keepalive.' },
} as const satisfies OptionsSchema;

export const deadLetterOptions = {
  file: { type: 'string', description: 'The dead-letter file (default: <config name>.channel-<id>.dead-letters.ndjson next to the checkpoint).' },
  maxBytes: {
    type: 'integer',
    minimum: 1024,
    maximum: 10 * 1024 ** 3,
    default: DEFAULT_DEAD_LETTER_MAX_BYTES,
    description: 'Most bytes of the dead-letter file; when full, the receiver waits for room.',
  },
} as const satisfies OptionsSchema;

export const receiverTuningOptions = {
  prefetch: { type: 'integer', minimum: 0, maximum: 16, description: 'Batches fetched ahead (default 1).' },
  handlerTimeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000, description: 'How long one attempt of a handler may take (default 60000 ms).' },
  stopGraceMs: { type: 'integer', minimum: 0, maximum: 600_000, description: 'How long a stop waits for the batch in progress (ms).' },
  splitAfter: { type: 'integer', minimum: 1, maximum: 100, description: 'Failed tries with an unclassified error before a batch is split (default 2).' },
} as const satisfies OptionsSchema;

export const retryOptions = {
  initialMs: { type: 'integer', minimum: 1, maximum: 3_600_000, description: 'First retry delay (default 500 ms), doubling from there.' },
  maxMs: { type: 'integer', minimum: 1, maximum: 3_600_000, description: 'Longest retry delay (default 30000 ms).' },
} as const satisfies OptionsSchema;

/** The JSON schema of the CLI's config file. */
export function receiverConfigJsonSchema(): JsonSchema {
  const top = objectJsonSchema(topLevelOptions) as { properties: Record<string, JsonSchema>; required: string[] };
  const receiver = objectJsonSchema(receiverTuningOptions, 'Tuning of the receiver.') as { properties: Record<string, JsonSchema> };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'flespi-receiver config file',
    description:
      'What `flespi-receiver run <file>` reads: the channel, how to read it, and the handlers that receive its messages. Generated from the source by `npm run schemas`.',
    type: 'object',
    required: [...top.required, 'handlers'],
    properties: {
      $schema: top.properties.$schema,
      flespi: objectJsonSchema(flespiOptions, 'The flespi server. The token is never in this file: it comes from FLESPI_TOKEN or tokenFile.'),
      channel: top.properties.channel,
      source: {
        type: 'object',
        description: 'How the channel is read (default: REST).',
        properties: { type: optionJsonSchema(sourceType) },
        if: { properties: { type: { const: 'mqtt' } }, required: ['type'] },
        then: objectJsonSchema(mqttSourceOptions),
        else: objectJsonSchema(restSourceOptions),
      },
      handlers: {
        type: 'array',
        description: 'Where the messages go: one entry per handler.',
        minItems: 1,
        items: handlerEntryJsonSchema(handlerTypeSchemas()),
      },
      checkpoint: top.properties.checkpoint,
      deadLetters: objectJsonSchema(deadLetterOptions, 'Where messages a handler can never deliver are recorded.'),
      receiver: { ...receiver, properties: { ...receiver.properties, retry: objectJsonSchema(retryOptions, 'Backoff of retries while a sink is down.') } },
    },
    additionalProperties: false,
  };
}
