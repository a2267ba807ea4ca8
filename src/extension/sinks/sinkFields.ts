/**
 * What "flespi: Add Sink…" asks for each sink type. The answers are validated by building the
 * handler (the core's own checks), so the rules live in one place; which options exist and which
 * may be left empty come from the sink options (sinkSchema.ts). No vscode here.
 */
import { ConfigError } from '../../core/options';
import { sinkOptions } from './sinkSchema';

export type FieldKind =
  /** A line of text. */
  | 'text'
  | 'integer'
  /** A path, picked with a file dialog or typed. */
  | 'file'
  /** A secret HTTP header value, kept in SecretStorage (`header` names it). */
  | 'secretHeader'
  /** The MQTT password, kept in SecretStorage. */
  | 'password'
  /** A JSON object (a custom handler's constructor options). */
  | 'json';

export interface SinkField {
  /** The option key in the sink settings (for secrets: the key the value is merged into). */
  key: string;
  kind: FieldKind;
  prompt: string;
  placeholder?: string;
  /** Empty answers are allowed (the handler's default applies): the option is not required. */
  optional: boolean;
  /** For 'secretHeader'. */
  header?: string;
  /** Asked only when the answers so far satisfy this (e.g. a password only with a username). */
  askIf?: (options: Readonly<Record<string, unknown>>) => boolean;
  /** For an optional 'file': the quick pick item that skips it, saying what applies then. */
  skipLabel?: string;
  /** File dialog filter, e.g. { 'PEM files': ['pem', 'crt', 'key'] }. */
  filters?: Record<string, string[]>;
}

export interface SinkTypeInfo {
  type: string;
  label: string;
  description: string;
  fields: SinkField[];
}

/** A question as written below: `optional` only where it differs from the option (required once asked). */
type Question = Omit<SinkField, 'optional'> & { optional?: boolean };

/** The questions for `type`, each checked to be one of its options and optional as the option is. */
function ask(type: string, questions: Question[]): SinkField[] {
  const { settings, handler } = sinkOptions(type);
  return questions.map((q) => {
    const option = settings[q.key] ?? handler[q.key];
    if (!option) throw new Error(`Add Sink asks for "${q.key}", which ${type} sinks do not have`);
    return { ...q, optional: q.optional ?? !option.required };
  });
}

const PEM = { 'PEM files': ['pem', 'crt', 'key', 'cer'], 'All files': ['*'] };
const isTlsUrl = (options: Readonly<Record<string, unknown>>) => /^(mqtts|wss):/i.test(String(options.url));

export const SINK_TYPES: readonly SinkTypeInfo[] = [
  {
    type: 'http',
    label: 'HTTP endpoint',
    description: 'POST each batch as a JSON array; 2xx accepts it',
    fields: ask('http', [
      { key: 'url', kind: 'text', prompt: 'URL that receives the POST requests', placeholder: 'https://example.com/flespi' },
      {
        key: 'headers',
        kind: 'secretHeader',
        header: 'Authorization',
        prompt: 'Authorization header value, kept in the secret storage (leave empty for none)',
        placeholder: 'Bearer …',
      },
    ]),
  },
  {
    type: 'mqtt',
    label: 'MQTT broker',
    description: 'Publish each message as JSON to a topic built from its fields',
    fields: ask('mqtt', [
      {
        key: 'url',
        kind: 'text',
        prompt: 'Broker URL (mqtt://, mqtts://, ws:// or wss://), without credentials',
        placeholder: 'mqtts://broker.example.com:8883',
      },
      {
        key: 'topic',
        kind: 'text',
        prompt: 'Topic template: {field} is replaced by that message parameter',
        placeholder: 'fleet/{channel.id}/{ident} (default)',
      },
      { key: 'username', kind: 'text', prompt: 'Username (leave empty for none)' },
      { key: 'password', kind: 'password', askIf: (o) => o.username !== undefined, prompt: 'Password, kept in the secret storage (leave empty for none)' },
      {
        key: 'caFile',
        kind: 'file',
        askIf: isTlsUrl,
        filters: PEM,
        prompt: "CA certificate (PEM) that signed the broker's certificate",
        skipLabel: 'No CA file: trust the CAs this computer trusts',
      },
      {
        key: 'certFile',
        kind: 'file',
        askIf: isTlsUrl,
        filters: PEM,
        prompt: 'Client certificate (PEM), if the broker asks for one',
        skipLabel: 'No client certificate',
      },
      {
        key: 'keyFile',
        kind: 'file',
        optional: false,
        askIf: (o) => o.certFile !== undefined,
        filters: PEM,
        prompt: 'Private key file (PEM) of the client certificate',
      },
    ]),
  },
  {
    type: 'aws-iot',
    label: 'AWS IoT Core',
    description: 'Publish each message over MQTT with a device certificate',
    fields: ask('aws-iot', [
      { key: 'endpoint', kind: 'text', prompt: 'Device data endpoint (AWS IoT → Settings)', placeholder: 'abc123-ats.iot.eu-west-1.amazonaws.com' },
      { key: 'port', kind: 'integer', prompt: 'Port of the endpoint: leave empty for 8883; 443 passes firewalls that allow only HTTPS', placeholder: '8883' },
      {
        key: 'caFile',
        kind: 'file',
        filters: PEM,
        prompt: "CA certificate (PEM) that signed the endpoint's certificate",
        skipLabel: "No CA file: trust the CAs this computer trusts (AWS IoT's Amazon Root CA is one)",
      },
      { key: 'certFile', kind: 'file', prompt: 'Device certificate file (PEM)', filters: PEM },
      { key: 'keyFile', kind: 'file', prompt: 'Private key file (PEM) of the certificate', filters: PEM },
      { key: 'topic', kind: 'text', prompt: 'Topic template: {field} is replaced by that message parameter', placeholder: '{ident} (default)' },
    ]),
  },
  {
    type: 'wialon',
    label: 'Wialon Retranslator',
    description: 'One TCP packet per message to a Wialon (Retranslator) receiver',
    fields: ask('wialon', [
      { key: 'host', kind: 'text', prompt: 'Host name or IP address of the receiver (without port)', placeholder: 'wialon.example.com' },
      { key: 'port', kind: 'integer', prompt: 'TCP port of the receiver', placeholder: '20163' },
    ]),
  },
  {
    type: 'stdout',
    label: 'NDJSON file',
    description: 'Append messages as JSON lines to a file (stdout in the CLI)',
    fields: ask('stdout', [
      { key: 'file', kind: 'text', prompt: 'File to append to (relative to the workspace folder)', placeholder: 'flespi-output/<name>.ndjson (default)' },
    ]),
  },
  {
    type: 'custom',
    label: 'Your own handler file',
    description: 'A TypeScript class in the workspace (New Handler… creates one)',
    fields: ask('custom', [
      { key: 'file', kind: 'file', prompt: 'Handler file (.ts or .js) whose default export extends Handler', filters: { 'Handler files': ['ts', 'js'] } },
      {
        key: 'options',
        kind: 'json',
        prompt: "Options for your handler's constructor, as a JSON object (leave empty for none)",
        placeholder: '{"url": "https://example.com", "retries": 3}',
      },
    ]),
  },
];

/** Why `name` cannot name a new sink, or undefined. */
export function validateSinkName(name: string, existing: readonly string[]): string | undefined {
  if (name.trim() === '') return 'Enter a name, e.g. my-webhook';
  if (name !== name.trim()) return 'Remove the spaces around the name';
  if (name.length > 64) return 'Use at most 64 characters';
  if (/[/\\]/.test(name)) return 'Do not use / or \\ in the name';
  if (existing.includes(name)) return `A sink named "${name}" exists already: pick another name, or remove that sink first`;
  return undefined;
}

/** Turns a typed answer into the option value (integers become numbers, JSON is parsed); throws ConfigError for what does not parse. */
export function answerValue(field: SinkField, answer: string): unknown {
  if (field.kind === 'json') {
    try {
      return JSON.parse(answer);
    } catch (error) {
      throw new ConfigError(`"${field.key}" must be a JSON object like {"key": "value"}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (field.kind !== 'integer') return answer;
  const value = Number(answer.trim());
  if (answer.trim() === '' || !Number.isInteger(value)) throw new ConfigError(`"${field.key}" must be a whole number, got ${JSON.stringify(answer)}`);
  return value;
}

/**
 * The message to show under the input box for `field`, given the error building the handler
 * threw, or undefined when the error is about another (later) field.
 */
export function fieldProblem(field: SinkField, error: unknown): string | undefined {
  if (error === undefined) return undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (!(error instanceof ConfigError)) return field.kind === 'file' || field.key === 'file' ? message : undefined;
  const keys = field.kind === 'secretHeader' ? ['headers', field.header ?? ''] : field.kind === 'password' ? ['password'] : [field.key];
  if (!keys.some((key) => key !== '' && message.includes(`"${key}"`))) return undefined;
  // Drop the `handler "x" (type): ` prefix: the input box already says which sink and field.
  let text = message;
  for (let prefix = /^(?:sink|handler) "[^"]*"(?: \([^)]*\))?: /; prefix.test(text); ) text = text.replace(prefix, '');
  return text;
}
