/**
 * The receiver configuration file of the CLI (`flespi-receiver run receiver.flespi.json`):
 *
 * ```json
 * {
 *   "flespi": { "region": "eu" },
 *   "channel": 1234567,
 *   "source": { "type": "rest", "delete": false },   // or { "type": "mqtt", "group"?: ..., "filter"?: ... }
 *   "handlers": [{ "type": "stdout" }, { "type": "custom", "file": "./MyHandler.ts", "options": {} }],
 *   "checkpoint": "./state/receiver.checkpoint.json",
 *   "deadLetters": { "file": "./state/receiver.dead-letters.ndjson", "maxBytes": 67108864 },
 *   "receiver": { "prefetch": 1, "handlerTimeoutMs": 60000, "retry": { "initialMs": 500, "maxMs": 30000 } }
 * }
 * ```
 *
 * Its JSON schema, for editors, is schemas/flespi-receiver.schema.json (configSchema.ts); a `$schema`
 * key naming it is read and ignored.
 *
 * The token is never in this file: it comes from FLESPI_TOKEN, or from the file named by
 * `flespi.tokenFile` (keep that file out of version control).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { deadLetterOptions, flespiOptions, mqttSourceOptions, receiverTuningOptions, restSourceOptions, retryOptions, topLevelOptions } from './configSchema';
import { FlespiClient, regionBaseUrl, type FlespiRegion } from './flespi/client';
import type { Handler } from './handler';
import { createHandlers } from './handlers/registry';
import type { HandlerEnv } from './handlers/spec';
import type { Logger } from './logger';
import { warnCleartextCredentials, warnIfOthersCanRead } from './security';
import { ConfigError, OptionReader, type Options } from './options';
import type { RetryOptions } from './backoff';
import { FileCheckpointStore } from './receiver/checkpoint';
import { FileDeadLetterStore, deadLetterPathFor } from './receiver/deadLetters';
import { Receiver, type ReceiverOptions } from './receiver/receiver';
import { MqttSource, type MqttSourceOptions } from './sources/mqtt';
import { RestSource, type RestSourceOptions } from './sources/rest';
import type { Source } from './sources/source';

export interface FlespiConnectionConfig {
  /** REST base URL; wins over `region`. */
  baseUrl: string;
  region: FlespiRegion;
  /** Absolute path of a file holding the token, when the user named one. */
  tokenFile?: string;
  /** How long a request may take to its last byte, beyond a long-poll's wait (FlespiClient `timeoutMs`). */
  timeoutMs?: number;
}

export type RestSourceConfig = { type: 'rest' } & Omit<RestSourceOptions, 'client' | 'channelId'>;

export type MqttSourceConfig = { type: 'mqtt'; url: string; gapFill: boolean } & Pick<
  MqttSourceOptions,
  'group' | 'filter' | 'clientId' | 'protocolVersion' | 'batchMaxMessages' | 'batchMaxWaitMs' | 'maxUnacked' | 'sessionExpirySeconds' | 'keepaliveSeconds'
>;

/** flespi's MQTT broker of each region (TLS). */
const REGION_MQTT_URLS: Readonly<Record<FlespiRegion, string>> = {
  eu: 'mqtts://mqtt.flespi.io:8883',
  ru: 'mqtts://ru-mqtt.flespi.io:8883',
};

export interface ReceiverTuning {
  prefetch?: number;
  handlerTimeoutMs?: number;
  stopGraceMs?: number;
  splitAfter?: number;
  retry?: Partial<RetryOptions>;
}

export interface ReceiverConfig {
  /** Absolute path of the file this came from (for messages and relative paths). */
  file: string;
  flespi: FlespiConnectionConfig;
  channel: number;
  source: RestSourceConfig | MqttSourceConfig;
  /** Handler entries as written; built by `createHandlers`. */
  handlers: Options[];
  /** Absolute path of the checkpoint file. */
  checkpoint: string;
  /** Where messages a handler can never deliver are recorded (default: beside the checkpoint). */
  deadLetters: { file: string; maxBytes: number };
  receiver: ReceiverTuning;
}

/** Reads and validates a configuration file. Every mistake is a ConfigError naming the file and the field. */
export async function loadConfig(path: string): Promise<ReceiverConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `${file}: no such config file` : `${file}: cannot read the config file (${code ?? String(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return parseConfig(json, file);
}

/** Validates a parsed configuration; `file` is its (absolute) path, for messages and relative paths. */
export function parseConfig(json: unknown, file: string): ReceiverConfig {
  const top = new OptionReader(json as Options, file);
  const dir = dirname(file);
  top.option('$schema', topLevelOptions.$schema); // for editors only
  const channel = top.option('channel', topLevelOptions.channel);
  const flespi = parseFlespi(child(top, 'flespi', `${file}: flespi`) ?? {}, `${file}: flespi`, dir);
  const source = parseSource(
    child(top, 'source', `${file}: source`) ?? { type: 'rest' },
    `${file}: source`,
    flespi,
    (top.options.flespi as Options | undefined)?.baseUrl !== undefined,
  );
  const handlers = parseHandlerList(top.options.handlers, `${file}: handlers`);
  const checkpointPath = top.option('checkpoint', topLevelOptions.checkpoint);
  const checkpoint = checkpointPath ? resolveUserPath(checkpointPath, dir) : join(dir, `${basename(file, extname(file))}.channel-${channel}.checkpoint.json`);
  const deadLetters = parseDeadLetters(child(top, 'deadLetters', `${file}: deadLetters`) ?? {}, `${file}: deadLetters`, dir, checkpoint);
  const receiver = parseTuning(child(top, 'receiver', `${file}: receiver`) ?? {}, `${file}: receiver`);
  top.rejectUnknown(['flespi', 'source', 'handlers', 'receiver', 'deadLetters']);
  return { file, flespi, channel, source, handlers, checkpoint, deadLetters, receiver };
}

function parseDeadLetters(options: Options, where: string, dir: string, checkpoint: string): ReceiverConfig['deadLetters'] {
  const reader = new OptionReader(options, where);
  const path = reader.option('file', deadLetterOptions.file);
  const maxBytes = reader.option('maxBytes', deadLetterOptions.maxBytes);
  reader.rejectUnknown();
  return { file: path ? resolveUserPath(path, dir) : deadLetterPathFor(checkpoint), maxBytes };
}

function parseFlespi(options: Options, where: string, dir: string): FlespiConnectionConfig {
  const reader = new OptionReader(options, where);
  const region: FlespiRegion = reader.option('region', flespiOptions.region);
  const explicitUrl = reader.option('baseUrl', flespiOptions.baseUrl);
  if (explicitUrl !== undefined && options.region !== undefined) {
    throw new ConfigError(`${where}: give either "baseUrl" or "region", not both (baseUrl wins and region would be ignored)`);
  }
  if (explicitUrl !== undefined && !new RegExp(flespiOptions.baseUrl.pattern).test(explicitUrl)) {
    throw new ConfigError(`${where}: "baseUrl" must be an http(s) URL such as "https://flespi.io", got "${explicitUrl}"`);
  }
  if (options.token !== undefined) {
    throw new ConfigError(
      `${where}: "token" does not belong in a config file (it would end up in version control): set FLESPI_TOKEN, or put the token in a file and name it with "tokenFile"`,
    );
  }
  const tokenFile = reader.option('tokenFile', flespiOptions.tokenFile);
  const timeoutMs = reader.option('timeoutMs', flespiOptions.timeoutMs);
  reader.rejectUnknown();
  return { baseUrl: explicitUrl ?? regionBaseUrl(region), region, tokenFile: tokenFile && resolveUserPath(tokenFile, dir), timeoutMs };
}

function parseSource(options: Options, where: string, flespi: FlespiConnectionConfig, customServer: boolean): RestSourceConfig | MqttSourceConfig {
  const reader = new OptionReader(options, where);
  if (reader.option('type', restSourceOptions.type) === 'mqtt') return parseMqttSource(reader, where, flespi, customServer);
  const o = restSourceOptions;
  const source: RestSourceConfig = {
    type: 'rest',
    limitCount: reader.option('limitCount', o.limitCount),
    timeout: reader.option('timeout', o.timeout),
    delete: reader.option('delete', o.delete),
    startKey: reader.option('startKey', o.startKey),
  };
  const limitSize = reader.option('limitSize', o.limitSize);
  if (limitSize !== undefined) source.limitSize = limitSize;
  const read = reader.option('read', o.read);
  if (read !== 'auto') source.read = read;
  // The buffer of the account's plan, for the fill warning (flespi: 100 MB free, more on commercial plans).
  const bufferLimitMB = reader.option('bufferLimitMB', o.bufferLimitMB);
  if (bufferLimitMB !== undefined) source.bufferLimitBytes = Math.round(bufferLimitMB * 1024 * 1024);
  reader.rejectUnknown();
  return source;
}

function parseMqttSource(reader: OptionReader, where: string, flespi: FlespiConnectionConfig, customServer: boolean): MqttSourceConfig {
  const o = mqttSourceOptions;
  const url = reader.option('url', o.url);
  if (url === undefined && customServer) {
    throw new ConfigError(`${where}: "url" is required with flespi.baseUrl: the MQTT broker of that server, e.g. "mqtt://127.0.0.1:1883" for a sandbox`);
  }
  if (url !== undefined && !new RegExp(o.url.pattern).test(url)) {
    throw new ConfigError(`${where}: "url" must be an MQTT URL such as "mqtts://mqtt.flespi.io:8883", got "${url}"`);
  }
  const source: MqttSourceConfig = { type: 'mqtt', url: url ?? REGION_MQTT_URLS[flespi.region], gapFill: reader.option('gapFill', o.gapFill) };
  const optional = {
    group: reader.option('group', o.group),
    filter: reader.option('filter', o.filter),
    clientId: reader.option('clientId', o.clientId),
    protocolVersion: reader.option('protocolVersion', o.protocolVersion) as 4 | 5 | undefined,
    batchMaxMessages: reader.option('batchMaxMessages', o.batchMaxMessages),
    batchMaxWaitMs: reader.option('batchMaxWaitMs', o.batchMaxWaitMs),
    maxUnacked: reader.option('maxUnacked', o.maxUnacked),
    sessionExpirySeconds: reader.option('sessionExpirySeconds', o.sessionExpirySeconds),
    keepaliveSeconds: reader.option('keepaliveSeconds', o.keepaliveSeconds),
  };
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) Object.assign(source, { [key]: value });
  reader.rejectUnknown();
  return source;
}

function parseHandlerList(value: unknown, where: string): Options[] {
  if (value === undefined) throw new ConfigError(`${where}: "handlers" is required: a list such as [{ "type": "stdout" }]`);
  if (!Array.isArray(value) || value.length === 0) throw new ConfigError(`${where}: must be a non-empty list of handlers such as [{ "type": "stdout" }]`);
  value.forEach((entry, index) => new OptionReader(entry as Options, `${where}[${index}]`)); // each must be an object
  return value as Options[];
}

function parseTuning(options: Options, where: string): ReceiverTuning {
  const reader = new OptionReader(options, where);
  const tuning: ReceiverTuning = {};
  for (const key of ['prefetch', 'handlerTimeoutMs', 'stopGraceMs', 'splitAfter'] as const) {
    const value = reader.option(key, receiverTuningOptions[key]);
    if (value !== undefined) tuning[key] = value;
  }
  const retry = child(reader, 'retry', `${where}.retry`);
  if (retry) {
    const r = new OptionReader(retry, `${where}.retry`);
    tuning.retry = {};
    for (const key of ['initialMs', 'maxMs'] as const) {
      const value = r.option(key, retryOptions[key]);
      if (value !== undefined) tuning.retry[key] = value;
    }
    r.rejectUnknown();
  }
  reader.rejectUnknown(['retry']);
  return tuning;
}

/** A nested settings object, or undefined when absent (the caller lists `key` in rejectUnknown's alsoAllowed). */
function child(reader: OptionReader, key: string, where: string): Options | undefined {
  const value = reader.options[key];
  if (value === undefined) return undefined;
  return new OptionReader(value as Options, where).options;
}

/** A path from the config: `~/...` is the home folder, relative paths are relative to the config's folder. */
export function resolveUserPath(path: string, dir: string): string {
  if (path === '~' || path.startsWith('~/')) return join(homedir(), path.slice(1));
  return isAbsolute(path) ? path : resolve(dir, path);
}

/**
 * The token to use: FLESPI_TOKEN, else the config's token file. Undefined when there is none.
 * Throws ConfigError when the named token file cannot be read or is empty.
 */
export async function resolveToken(env: NodeJS.ProcessEnv, tokenFile?: string, log?: Logger): Promise<string | undefined> {
  const fromEnv = env.FLESPI_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  if (!tokenFile) return undefined;
  let text: string;
  try {
    text = await readFile(tokenFile, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `token file ${tokenFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)}); create it with the token as its only content, or set FLESPI_TOKEN`,
    );
  }
  const token = text.trim();
  if (!token) throw new ConfigError(`token file ${tokenFile} is empty: put the flespi token in it, or set FLESPI_TOKEN`);
  if (log) await warnIfOthersCanRead(tokenFile, 'tokenFile', log);
  return token;
}

/** The source a configuration describes. */
export function createSource(config: ReceiverConfig, client: FlespiClient, token: string, log?: Logger): Source {
  if (config.source.type === 'mqtt') {
    const { type: _type, gapFill, ...options } = config.source;
    // The checkpoint path names this config's position: its default clientId is its own, stable across restarts.
    return new MqttSource({ ...options, sessionOwner: config.checkpoint, token, channelId: config.channel, gapFill: gapFill ? { client } : undefined, log });
  }
  const { type: _type, ...options } = config.source;
  return new RestSource({ ...options, client, channelId: config.channel, log });
}

export interface BuiltReceiver {
  receiver: Receiver;
  client: FlespiClient;
  handlers: Handler[];
  /** Take its lock (`acquire()`) before starting the receiver, release it after it stopped. */
  checkpoints: FileCheckpointStore;
}

/** Everything `run` needs: the flespi client, the source, the handlers and the receiver with its checkpoint file. */
export async function buildReceiver(
  config: ReceiverConfig,
  token: string,
  options: { log?: Logger; appName?: string; lockedBy?: string } = {},
): Promise<BuiltReceiver> {
  const env: HandlerEnv = { resolvePath: (path) => resolveUserPath(path, dirname(config.file)) };
  const handlers = await createHandlers(config.handlers, env, `${config.file}: handlers`);
  const client = new FlespiClient({ token, baseUrl: config.flespi.baseUrl, timeoutMs: config.flespi.timeoutMs, appName: options.appName ?? 'flespi-receiver' });
  if (options.log) {
    warnCleartextCredentials(config.flespi.baseUrl, 'the flespi token', options.log);
    if (config.source.type === 'mqtt') warnCleartextCredentials(config.source.url, 'the flespi token (the MQTT source logs in with it)', options.log);
  }
  const checkpoints = new FileCheckpointStore(config.checkpoint, { by: options.lockedBy });
  const receiverOptions: ReceiverOptions = {
    source: createSource(config, client, token, options.log),
    handlers,
    checkpoints,
    deadLetters: new FileDeadLetterStore(config.deadLetters.file, config.deadLetters.maxBytes),
    ...config.receiver,
    log: options.log,
  };
  return { receiver: new Receiver(receiverOptions), client, handlers, checkpoints };
}
