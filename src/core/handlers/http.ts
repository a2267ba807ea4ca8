/**
 * POSTs each batch as a JSON array to a URL (`type: "http"`), the way flespi's HTTP streams do.
 * Any 2xx answer acknowledges the batch; anything else throws an error with the status and a short
 * excerpt of the answer. Connections are kept alive between batches.
 *
 * What the error says to the receiver (see classifyFailure):
 * - 408, 429, 5xx, a timeout, a network error, and the answers that say the *settings* are wrong
 *   (3xx, 401, 403, 404, 405, 407, 410, 415, 421, 426: every batch would get the same): TransientError,
 *   retried with backoff until the server or the setting is fixed; never dead-lettered.
 * - Any other 4xx (400, 409, 413, 422, ...): UndeliverableError, this batch as it is was refused; the
 *   receiver splits it to find the messages at fault.
 * - A message that cannot be written as JSON (serialize.ts) goes to ctx.reject and the others are
 *   posted: when the batch cannot be written at once, each message is written on its own and the
 *   array joined from the pieces.
 */
import http from 'node:http';
import https from 'node:https';
import { Handler, type HandlerContext, type HandlerHealth } from '../handler';
import { warnCleartextCredentials } from '../security';
import { errorMessage, TransientError, UndeliverableError } from '../errors';
import type { FlespiMessage } from '../message';
import type { OptionsSchema } from '../optionSchema';
import { ConfigError, OptionReader, type Options } from '../options';
import { jsonArray } from './serialize';
import type { HandlerEnv, HandlerSpec } from './spec';

export interface HttpSettings {
  readonly url: string;
  readonly method: 'POST' | 'PUT';
  /** Sent with every request (values from headersEnv already filled in). */
  readonly headers: Readonly<Record<string, string>>;
  /** A batch fails when the whole answer has not arrived within this time. */
  readonly timeoutMs: number;
}

/** How much of an error answer goes into the error message. */
const EXCERPT_CHARS = 200;
/** 4xx answers that say the URL, credentials or server setup are wrong, not the messages: retried, never dead-lettered. */
const SETTINGS_STATUSES: ReadonlySet<number> = new Set([401, 403, 404, 405, 407, 410, 415, 421, 426]);

/** The error for a non-2xx answer, classified for the receiver. */
function statusError(status: number, message: string): Error {
  if (status >= 400 && status < 500 && status !== 408 && status !== 429 && !SETTINGS_STATUSES.has(status)) return new UndeliverableError(message);
  return new TransientError(message);
}

export class HttpHandler extends Handler {
  private agent?: http.Agent;
  private readonly target: URL;
  /** The URL without query or credentials, for messages and logs. */
  private readonly shownUrl: string;
  private batches = 0;
  private lastOutcome = 'nothing sent yet';

  constructor(
    readonly settings: HttpSettings,
    name?: string,
  ) {
    super(name);
    this.target = new URL(settings.url);
    this.shownUrl = `${this.target.origin}${this.target.pathname}`;
  }

  override async start(): Promise<void> {
    if (Object.keys(this.settings.headers).length > 0) warnCleartextCredentials(this.settings.url, `each header of HTTP sink "${this.name}"`, this.log);
    const options = { keepAlive: true, maxSockets: 4 };
    this.agent = this.target.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  }

  override async handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    if (!this.agent) throw new TransientError(`${this.name}: not started`);
    const json = jsonArray(messages, (index, error) => ctx.reject(index, error));
    if (json === undefined) return; // every message rejected: nothing to send
    const body = Buffer.from(json);
    try {
      await this.send(this.agent, body, ctx.signal);
    } catch (error) {
      if (!(error instanceof StaleConnectionError)) throw error;
      // The server closed an idle kept-alive connection just as we reused it: one fresh try.
      await this.send(this.agent, body, ctx.signal);
    }
    this.batches++;
  }

  override async stop(): Promise<void> {
    this.agent?.destroy();
    this.agent = undefined;
  }

  override health(): HandlerHealth {
    return { detail: `${this.batches} batches delivered; last: ${this.lastOutcome}` };
  }

  /**
   * "Test Sink Connection": the configured method, URL and headers with the body `[]`, an empty
   * batch: a flespi HTTP-stream endpoint stores nothing from it, and it tests the address, TLS and
   * credentials. Any 2xx passes; another answer throws the same error a batch would get.
   */
  override async probe(signal: AbortSignal): Promise<string> {
    if (!this.agent) throw new Error(`${this.name}: not started`);
    const status = await this.send(this.agent, Buffer.from('[]'), signal);
    return `${this.shownUrl} answered ${status} to ${this.settings.method} [] (an empty batch, no messages)`;
  }

  /** Sends `body`; resolves with the 2xx status and its text, throws a classified error otherwise. */
  private send(agent: http.Agent, body: Buffer, signal: AbortSignal): Promise<string> {
    const { method, headers, timeoutMs } = this.settings;
    const transport = this.target.protocol === 'https:' ? https : http;
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      let answer = '';
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.lastOutcome = error ? error.message : 'accepted';
        if (error) {
          request.destroy();
          reject(error);
        } else resolve(answer);
      };
      const onAbort = () => settle(new TransientError(`request to ${this.shownUrl} cancelled`));
      const timer = setTimeout(() => settle(new TransientError(`no answer from ${this.shownUrl} within ${timeoutMs} ms (timeoutMs)`)), timeoutMs);

      const request = transport.request(this.target, {
        method,
        agent,
        headers: { 'content-type': 'application/json', ...headers, 'content-length': body.length },
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNRESET' && request.reusedSocket && !settled) {
          settled = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          reject(new StaleConnectionError());
          return;
        }
        // No answer at all: the server, the network or the TLS setup, never the messages.
        settle(new TransientError(this.explainRequestError(error), { cause: error }));
      });
      request.on('response', (response) => {
        const status = response.statusCode ?? 0;
        response.on('error', (error) => settle(new TransientError(`answer from ${this.shownUrl} broke off: ${errorMessage(error)}`, { cause: error })));
        if (status >= 200 && status < 300) {
          answer = `${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`;
          response.resume(); // drain, so the connection can be reused
          response.on('end', () => settle());
          return;
        }
        let excerpt = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          if (excerpt.length < EXCERPT_CHARS) excerpt += chunk;
        });
        response.on('end', () =>
          settle(statusError(status, this.explainStatus(status, response.statusMessage ?? '', excerpt, response.headers.location, body.length))),
        );
      });
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      request.end(body);
    });
  }

  private explainStatus(status: number, statusText: string, body: string, location: string | undefined, bytes: number): string {
    const text = body.replace(/\s+/g, ' ').trim();
    const excerpt = text ? `: ${text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text}` : '';
    const answered = `${this.shownUrl} answered ${status}${statusText ? ` ${statusText}` : ''}`;
    if (status >= 300 && status < 400) return `${answered} (redirects are not followed: set url to ${location ?? 'the new address'})`;
    if (status === 401 || status === 403) return `${answered}${excerpt} (check the credentials in headers/headersEnv)`;
    if (status === 413) return `${answered}: the batch of ${bytes} bytes is too large for this server`;
    return `${answered}${excerpt}`;
  }

  private explainRequestError(error: NodeJS.ErrnoException): string {
    const code = error.code ?? '';
    const address = `${this.target.hostname}:${this.target.port || (this.target.protocol === 'https:' ? 443 : 80)}`;
    if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'].includes(code))
      return `cannot reach ${address} (${code}): check url, and that the server is running and reachable from here`;
    if (code === 'ECONNRESET' || code === 'EPIPE') return `${address} closed the connection before answering (${code})`;
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
      return `the certificate of ${address} is not issued for ${this.target.hostname}: use a host name the certificate lists`;
    if (/CERT|SELF_SIGNED|UNABLE_TO/.test(code)) return `the certificate of ${address} is not trusted by this computer (${code})`;
    return `request to ${this.shownUrl} failed${code ? ` (${code})` : ''}: ${error.message}`;
  }
}

/** A kept-alive connection that the server had already closed: safe to try once more on a new one. */
class StaleConnectionError extends Error {}

export const httpOptions = {
  url: {
    type: 'string',
    required: true,
    description:
      'The endpoint that receives a POST with a JSON array of messages per batch; any 2xx answer accepts the batch. No credentials in it: send them as headers.',
    pattern: '^https?://',
    patternErrorMessage: 'An http:// or https:// URL.',
    examples: ['https://example.com/flespi'],
  },
  headers: {
    type: 'stringMap',
    description:
      'Request headers sent with every batch. Secret ones (Authorization, API keys) do not belong in a file: name them in headersEnv (or, in VS Code, secretHeaders).',
  },
  headersEnv: {
    type: 'stringMap',
    description:
      'Headers whose values come from environment variables, e.g. {"Authorization": "MY_API_TOKEN"}: the value of MY_API_TOKEN is sent as the Authorization header.',
  },
  method: { type: 'string', enum: ['POST', 'PUT'], default: 'POST', description: 'HTTP method of the requests.' },
  timeoutMs: {
    type: 'integer',
    minimum: 100,
    maximum: 600_000,
    default: 10_000,
    description: 'How long one request may take (ms) before the batch is retried.',
  },
} as const satisfies OptionsSchema;

export const httpSpec: HandlerSpec = {
  type: 'http',
  title: 'HTTP endpoint: POST each batch as a JSON array (like a flespi HTTP stream)',
  options: httpOptions,
  create(options: Options, _env: HandlerEnv, name: string) {
    const where = `handler "${name}" (http)`;
    const r = new OptionReader(options, where);
    const { text: url } = r.url('url', ['http:', 'https:'], 'https://example.com/flespi', 'send them in "headers" (or "headersEnv"), e.g. Authorization');
    const headers = readHeaders(r, where);
    const settings: HttpSettings = {
      url,
      method: r.option('method', httpOptions.method),
      headers,
      timeoutMs: r.option('timeoutMs', httpOptions.timeoutMs),
    };
    r.rejectUnknown(['type', 'name']);
    return new HttpHandler(settings, name);
  },
};

/** `headers` as written, plus `headersEnv`: `{ "Authorization": "MY_ENV_VAR" }` takes the value from the environment. */
function readHeaders(r: OptionReader, where: string): Record<string, string> {
  const inline = r.option('headers', httpOptions.headers);
  const fromEnv = r.option('headersEnv', httpOptions.headersEnv);
  const headers: Record<string, string> = {};
  const add = (setting: string, header: string, value: string) => {
    try {
      http.validateHeaderName(header);
      http.validateHeaderValue(header, value);
    } catch {
      throw new ConfigError(`${where}: "${setting}" has an invalid HTTP header ${JSON.stringify(header)} (names are letters, digits and -; values one line)`);
    }
    const key = header.toLowerCase();
    if (key === 'content-length' || key === 'host' || key === 'transfer-encoding')
      throw new ConfigError(`${where}: "${setting}" must not set ${header}: it is set for each request`);
    if (key in headers) throw new ConfigError(`${where}: header ${header} is set twice (in "headers" and "headersEnv")`);
    headers[key] = value;
  };
  for (const [header, value] of Object.entries(inline)) add('headers', header, value);
  for (const [header, variable] of Object.entries(fromEnv)) {
    const value = process.env[variable];
    if (!value) throw new ConfigError(`${where}: "headersEnv" takes ${header} from the environment variable ${variable}, which is not set`);
    add('headersEnv', header, value);
  }
  return headers;
}
