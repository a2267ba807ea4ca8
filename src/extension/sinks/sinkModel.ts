/**
 * Sinks as the user writes them in the `flespi.sinks` setting, and their conversion to the handler
 * entries the core registry builds handlers from. No vscode here: tested on its own.
 *
 * Secrets never sit in settings: an HTTP sink lists the names of its secret headers in
 * `secretHeaders` and an MQTT sink says `secretPassword: true`; the values live in SecretStorage
 * under the sink's scope and name (sinkSecrets.ts) and are merged in only when the handler is created.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** One entry of `flespi.sinks`. Type-specific options sit next to `name` and `type`. */
export interface SinkSetting {
  readonly name: string;
  readonly type: string;
  readonly [option: string]: unknown;
}

/** What SecretStorage holds for one sink. */
export interface SinkSecrets {
  headers?: Record<string, string>;
  password?: string;
}

/** Keys of a sink setting that belong to the extension, not to the handler. */
const EXTENSION_KEYS = ['name', 'type', 'secretHeaders', 'secretPassword'] as const;

/** The valid sinks of the setting, and one problem line per entry that is not. */
export function parseSinks(raw: unknown): { sinks: SinkSetting[]; problems: string[] } {
  if (raw === undefined || raw === null) return { sinks: [], problems: [] };
  if (!Array.isArray(raw)) return { sinks: [], problems: ['flespi.sinks must be a list of sink objects'] };
  const sinks: SinkSetting[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  raw.forEach((entry: unknown, index) => {
    const where = `flespi.sinks[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      return problems.push(`${where}: must be an object like { "name": "my-sink", "type": "http", ... }`);
    const { name, type } = entry as Record<string, unknown>;
    if (typeof name !== 'string' || name.trim() === '') return problems.push(`${where}: "name" is required (a unique name for the sink)`);
    if (typeof type !== 'string' || type === '') return problems.push(`${where} ("${name}"): "type" is required`);
    if (seen.has(name)) return problems.push(`${where}: another sink is named "${name}" too: sink names must be unique`);
    seen.add(name);
    sinks.push(entry as SinkSetting);
  });
  return { sinks, problems };
}

/** Header names kept in SecretStorage for this sink. */
export function secretHeaderNames(sink: SinkSetting): string[] {
  return Array.isArray(sink.secretHeaders) ? sink.secretHeaders.filter((h): h is string => typeof h === 'string' && h !== '') : [];
}

/** The secrets a sink declares but SecretStorage does not have, as readable names. */
export function missingSecrets(sink: SinkSetting, secrets: SinkSecrets | undefined): string[] {
  const missing = secretHeaderNames(sink)
    .filter((h) => secrets?.headers?.[h] === undefined)
    .map((h) => `header ${h}`);
  if (sink.secretPassword === true && secrets?.password === undefined) missing.push('password');
  return missing;
}

/**
 * The handler entry for the core registry (`createHandler`): the sink's options without the
 * extension's own keys, with the secrets merged in. Throws when a declared secret is missing.
 */
export function handlerEntry(sink: SinkSetting, secrets: SinkSecrets | undefined): Record<string, unknown> {
  const missing = missingSecrets(sink, secrets);
  if (missing.length > 0) {
    throw new Error(
      `sink "${sink.name}": the ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not in this machine's secret storage: run "flespi: Add Sink…" again for this sink, or remove the marker from flespi.sinks`,
    );
  }
  const entry: Record<string, unknown> = { type: sink.type, name: sink.name };
  for (const [key, value] of Object.entries(sink)) {
    if (!(EXTENSION_KEYS as readonly string[]).includes(key)) entry[key] = value;
  }
  const headerNames = secretHeaderNames(sink);
  if (headerNames.length > 0) {
    const headers =
      typeof entry.headers === 'object' && entry.headers !== null && !Array.isArray(entry.headers) ? { ...(entry.headers as Record<string, unknown>) } : {};
    for (const header of headerNames) headers[header] = secrets!.headers![header];
    entry.headers = headers;
  }
  if (sink.secretPassword === true) entry.password = secrets!.password;
  return entry;
}

/** Splits what the Add Sink flow collected into the setting (no secrets) and the secrets. */
export function splitSecrets(
  sink: SinkSetting,
  secretHeaders: Record<string, string>,
  password: string | undefined,
): { setting: SinkSetting; secrets: SinkSecrets | undefined } {
  const setting: Record<string, unknown> = { ...sink };
  const secrets: SinkSecrets = {};
  const headerNames = Object.keys(secretHeaders);
  if (headerNames.length > 0) {
    setting.secretHeaders = headerNames;
    secrets.headers = { ...secretHeaders };
  }
  if (password !== undefined && password !== '') {
    setting.secretPassword = true;
    secrets.password = password;
  }
  delete setting.password;
  return { setting: setting as SinkSetting, secrets: headerNames.length > 0 || secrets.password !== undefined ? secrets : undefined };
}

/** One line for the Sinks tree: where the sink sends messages to. */
export function sinkTarget(sink: SinkSetting): string {
  const text = (key: string) => (typeof sink[key] === 'string' ? (sink[key] as string) : undefined);
  switch (sink.type) {
    case 'wialon':
      return `${text('host') ?? '?'}:${typeof sink.port === 'number' ? sink.port : '?'}`;
    case 'custom':
      return text('file') ?? '';
    case 'stdout':
      return text('file') ?? 'NDJSON file';
    case 'aws-iot':
      // The port is part of where it goes (8883, or 443 with ALPN): shown even when it is the default.
      return text('endpoint') ? `${text('endpoint')}:${typeof sink.port === 'number' ? sink.port : 8883}` : '';
    default:
      return text('url') ?? text('endpoint') ?? text('host') ?? '';
  }
}

/** A path from the settings: absolute as is, `~/…` in the home folder, else relative to `baseDir` (the workspace folder). */
export function resolveSinkPath(path: string, baseDir: string): string {
  if (path === '~' || path.startsWith('~/')) return join(homedir(), path.slice(1));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}
