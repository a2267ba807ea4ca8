/**
 * The receiver configuration file of the CLI (`flespi-receiver run receiver.json`):
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
 * The token is never in this file: it comes from FLESPI_TOKEN, or from the file named by
 * `flespi.tokenFile` (keep that file out of version control).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { FlespiClient, regionBaseUrl, MAX_POLL_TIMEOUT_S, type FlespiRegion } from './flespi/client';
import type { Handler } from './handler';
import { createHandlers } from './handlers/registry';
import type { HandlerEnv } from './handlers/spec';
import type { Logger } from './logger';
import { warnCleartextCredentials, warnIfOthersCanRead } from './security';
import { ConfigError, OptionReader, type Options } from './options';
import type { RetryOptions } from './backoff';
import { FileCheckpointStore } from './receiver/checkpoint';
import { DEFAULT_DEAD_LETTER_MAX_BYTES, FileDeadLetterStore, deadLetterPathFor } from './receiver/deadLetters';
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
  const channel = top.number('channel', { min: 1, integer: true });
  const flespi = parseFlespi(child(top, 'flespi', `${file}: flespi`) ?? {}, `${file}: flespi`, dir);
  const source = parseSource(child(top, 'source', `${file}: source`) ?? { type: 'rest' }, `${file}: source`, flespi, (top.options.flespi as Options | undefined)?.baseUrl !== undefined);
  const handlers = parseHandlerList(top.options.handlers, `${file}: handlers`);
  const checkpointPath = top.string('checkpoint', undefined);
  const checkpoint = checkpointPath ? resolveUserPath(checkpointPath, dir) : join(dir, `${basename(file, extname(file))}.channel-${channel}.checkpoint.json`);
  const deadLetters = parseDeadLetters(child(top, 'deadLetters', `${file}: deadLetters`) ?? {}, `${file}: deadLetters`, dir, checkpoint);
  const receiver = parseTuning(child(top, 'receiver', `${file}: receiver`) ?? {}, `${file}: receiver`);
  top.rejectUnknown(['flespi', 'source', 'handlers', 'receiver', 'deadLetters']);
  return { file, flespi, channel, source, handlers, checkpoint, deadLetters, receiver };
}

function parseDeadLetters(options: Options, where: string, dir: string, checkpoint: string): ReceiverConfig['deadLetters'] {
  const reader = new OptionReader(options, where);
  const path = reader.string('file', undefined);
  const maxBytes = reader.number('maxBytes', { min: 1024, max: 10 * 1024 ** 3, integer: true }, DEFAULT_DEAD_LETTER_MAX_BYTES);
  reader.rejectUnknown();
  return { file: path ? resolveUserPath(path, dir) : deadLetterPathFor(checkpoint), maxBytes };
}

function parseFlespi(options: Options, where: string, dir: string): FlespiConnectionConfig {
  const reader = new OptionReader(options, where);
  const region = reader.oneOf<FlespiRegion>('region', ['eu', 'ru'], 'eu');
  const explicitUrl = reader.string('baseUrl', undefined);
  if (explicitUrl !== undefined && options.region !== undefined) {
    throw new ConfigError(`${where}: give either "baseUrl" or "region", not both (baseUrl wins and region would be ignored)`);
  }
  if (explicitUrl !== undefined && !/^https?:\/\/[^/]+/.test(explicitUrl)) {
    throw new ConfigError(`${where}: "baseUrl" must be an http(s) URL such as "https://flespi.io", got "${explicitUrl}"`);
  }
  if (options.token !== undefined) {
    throw new ConfigError(`${where}: "token" does not belong in a config file (it would end up in version control): set FLESPI_TOKEN, or put the token in a file and name it with "tokenFile"`);
  }
  const tokenFile = reader.string('tokenFile', undefined);
  const timeoutMs = reader.number('timeoutMs', { min: 1000, max: 600_000, integer: true }, 40_000);
  reader.rejectUnknown();
  return { baseUrl: explicitUrl ?? regionBaseUrl(region), region, tokenFile: tokenFile && resolveUserPath(tokenFile, dir), timeoutMs };
}

function parseSource(options: Options, where: string, flespi: FlespiConnectionConfig, customServer: boolean): RestSourceConfig | MqttSourceConfig {
  const reader = new OptionReader(options, where);
  if (reader.oneOf('type', ['rest', 'mqtt'], 'rest') === 'mqtt') return parseMqttSource(reader, where, flespi, customServer);
  const source: RestSourceConfig = {
    type: 'rest',
    limitCount: reader.number('limitCount', { min: 1, max: 1_000_000, integer: true }, 1000),
    timeout: reader.number('timeout', { min: 1, max: MAX_POLL_TIMEOUT_S, integer: true }, 20),
    delete: reader.boolean('delete', false),
    startKey: reader.number('startKey', { min: 0, integer: true }, 0),
  };
  if (reader.has('limitSize')) source.limitSize = reader.number('limitSize', { min: 1, max: 100_000_000, integer: true });
  const read = reader.oneOf('read', ['auto', 'key', 'time'], 'auto');
  if (read !== 'auto') source.read = read;
  // The buffer of the account's plan, for the fill warning (flespi: 100 MB free, more on commercial plans).
  if (reader.has('bufferLimitMB')) source.bufferLimitBytes = Math.round(reader.number('bufferLimitMB', { min: 0.001, max: 1_000_000 }) * 1024 * 1024);
  reader.rejectUnknown();
  return source;
}

function parseMqttSource(reader: OptionReader, where: string, flespi: FlespiConnectionConfig, customServer: boolean): MqttSourceConfig {
  const url = reader.string('url', undefined);
  if (url === undefined && customServer) {
    throw new ConfigError(`${where}: "url" is required with flespi.baseUrl: the MQTT broker of that server, e.g. "mqtt://127.0.0.1:1883" for a sandbox`);
  }
  if (url !== undefined && !/^(mqtts?|wss?):\/\/[^/]+/.test(url)) {
    throw new ConfigError(`${where}: "url" must be an MQTT URL such as "mqtts://mqtt.flespi.io:8883", got "${url}"`);
  }
  const source: MqttSourceConfig = { type: 'mqtt', url: url ?? REGION_MQTT_URLS[flespi.region], gapFill: reader.boolean('gapFill', true) };
  const group = reader.string('group', undefined);
  if (group !== undefined) source.group = group;
  const filter = reader.string('filter', undefined);
  if (filter !== undefined) source.filter = filter;
  const clientId = reader.string('clientId', undefined);
  if (clientId !== undefined) source.clientId = clientId;
  if (reader.has('protocolVersion')) source.protocolVersion = reader.number('protocolVersion', { min: 4, max: 5, integer: true }) as 4 | 5;
  if (reader.has('batchMaxMessages')) source.batchMaxMessages = reader.number('batchMaxMessages', { min: 1, max: 100_000, integer: true });
  if (reader.has('batchMaxWaitMs')) source.batchMaxWaitMs = reader.number('batchMaxWaitMs', { min: 0, max: 60_000, integer: true });
  if (reader.has('maxUnacked')) source.maxUnacked = reader.number('maxUnacked', { min: 1, max: 1_000_000, integer: true });
  if (reader.has('sessionExpirySeconds')) source.sessionExpirySeconds = reader.number('sessionExpirySeconds', { min: 0, max: 4_294_967_295, integer: true });
  if (reader.has('keepaliveSeconds')) source.keepaliveSeconds = reader.number('keepaliveSeconds', { min: 0, max: 65_535, integer: true });
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
  if (reader.has('prefetch')) tuning.prefetch = reader.number('prefetch', { min: 0, max: 16, integer: true });
  if (reader.has('handlerTimeoutMs')) tuning.handlerTimeoutMs = reader.number('handlerTimeoutMs', { min: 100, max: 3_600_000, integer: true });
  if (reader.has('stopGraceMs')) tuning.stopGraceMs = reader.number('stopGraceMs', { min: 0, max: 600_000, integer: true });
  if (reader.has('splitAfter')) tuning.splitAfter = reader.number('splitAfter', { min: 1, max: 100, integer: true });
  const retry = child(reader, 'retry', `${where}.retry`);
  if (retry) {
    const r = new OptionReader(retry, `${where}.retry`);
    tuning.retry = {};
    if (r.has('initialMs')) tuning.retry.initialMs = r.number('initialMs', { min: 1, max: 3_600_000, integer: true });
    if (r.has('maxMs')) tuning.retry.maxMs = r.number('maxMs', { min: 1, max: 3_600_000, integer: true });
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
    throw new ConfigError(`token file ${tokenFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)}); create it with the token as its only content, or set FLESPI_TOKEN`);
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
export async function buildReceiver(config: ReceiverConfig, token: string, options: { log?: Logger; appName?: string; lockedBy?: string } = {}): Promise<BuiltReceiver> {
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
