import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { FlespiError, type FlespiErrorDetail, type FlespiErrorKind } from '../errors';
import type { FlespiMessage } from '../message';

export type FlespiRegion = 'eu' | 'ru';

const REGION_BASE_URLS: Readonly<Record<FlespiRegion, string>> = {
  eu: 'https://flespi.io',
  ru: 'https://ru.flespi.io',
};

/** The REST base URL of a flespi region. */
export function regionBaseUrl(region: FlespiRegion): string {
  return REGION_BASE_URLS[region];
}

/** The longest long-poll flespi accepts for channel messages (style A `timeout`), in seconds. */
export const MAX_POLL_TIMEOUT_S = 30;

export interface FlespiClientOptions {
  /** The 64-character flespi token, bare or with the `FlespiToken ` prefix. */
  token: string;
  baseUrl?: string;
  /** How long to wait for an answer; long-polls get their wait time on top of it. */
  timeoutMs?: number;
  /** Sent as `x-flespi-app` so the request shows up by name in flespi's logs. */
  appName?: string;
}

/** One item of a collection (channel, device, stream, protocol). Its fields depend on the `fields` asked for. */
export type FlespiItem = Record<string, unknown> & { id?: number };

/** A collection answer: the items found, plus per-id errors when only some ids exist (flespi's partial success). */
export interface FlespiList<T = FlespiItem> {
  items: T[];
  errors: FlespiErrorDetail[];
}

/** Style A: consume the channel buffer by key. */
export interface PollParams {
  /** The `next_key` of the previous answer; 0 for the start of the buffer. */
  currKey: number;
  limitCount?: number;
  limitSize?: number;
  /** Long-poll seconds (≤ 30): flespi answers as soon as a message arrives, or empty after this. */
  timeout?: number;
  /** Delete every message with a key below `currKey` (the previous batch) before reading. */
  delete?: boolean;
}

export interface PollResult {
  messages: FlespiMessage[];
  /** The `curr_key` for the next poll; undefined when flespi did not send one (keep the old key then). */
  nextKey: number | undefined;
}

/** Style B: a time range on `server.timestamp`. */
export interface ChannelHistoryParams {
  from?: number;
  to?: number;
  count?: number;
  reverse?: boolean;
  /** A flespi expression, e.g. `position.speed>60&&position.valid==true`. */
  filter?: string;
}

/** Device messages: a time range on the device `timestamp`. */
export interface DeviceHistoryParams extends ChannelHistoryParams {
  /** Parameter names (wildcards allowed); messages with none of them are skipped. */
  fields?: string[];
}

/** What a request was about, so errors can name it and say what to do. */
interface RequestSubject {
  /** e.g. `channel 123`, `devices all`. */
  what: string;
  /** How to find valid ids, for 404 answers. */
  listHint?: string;
}

/**
 * The flespi REST API (https://flespi.io/rest-api) for reading channels, devices and messages.
 * It classifies every failure as a FlespiError; retrying is the caller's job.
 */
export class FlespiClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly http: AxiosInstance;

  constructor(options: FlespiClientOptions) {
    const token = options.token.trim().replace(/^FlespiToken\s+/i, '');
    if (token === '') throw new FlespiError('auth', 'no flespi token given: create one at https://flespi.io/#/panel/tokens and set it');
    // eslint-disable-next-line no-control-regex -- control characters would corrupt the header
    if (/[\s\u0000-\u001f\u007f]/.test(token)) throw new FlespiError('auth', 'the flespi token contains spaces or control characters: paste only the token itself (64 letters and digits)');
    this.baseUrl = (options.baseUrl ?? REGION_BASE_URLS.eu).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]/.test(this.baseUrl)) {
      throw new FlespiError('bad-request', `the base URL "${this.baseUrl}" is not an http(s) URL: use https://flespi.io, https://ru.flespi.io or a sandbox URL like http://127.0.0.1:9005`);
    }
    this.timeoutMs = options.timeoutMs ?? 40_000;
    const headers: Record<string, string> = { Authorization: `FlespiToken ${token}`, Accept: 'application/json' };
    if (options.appName) headers['x-flespi-app'] = options.appName.slice(0, 63);
    this.http = axios.create({
      baseURL: this.baseUrl,
      headers,
      // Every status and body is classified here, not by axios.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      maxContentLength: Infinity,
      maxRedirects: 0,
    });
  }

  /** Token info; the cheapest way to check a token (401 when it is wrong). */
  async authInfo(signal?: AbortSignal): Promise<FlespiItem> {
    const items = await this.result<FlespiItem>('GET', '/auth/info', { what: 'token info' }, signal);
    return items[0] ?? {};
  }

  channels(selector: string | number = 'all', fields?: string[], signal?: AbortSignal): Promise<FlespiList> {
    return this.list('/gw/channels', selector, fields, { what: 'channel', listHint: 'list channels with `flespi-receiver channels`' }, signal);
  }

  devices(selector: string | number = 'all', fields?: string[], signal?: AbortSignal): Promise<FlespiList> {
    return this.list('/gw/devices', selector, fields, { what: 'device', listHint: 'list devices with GET /gw/devices/all' }, signal);
  }

  streams(selector: string | number = 'all', fields?: string[], signal?: AbortSignal): Promise<FlespiList> {
    return this.list('/gw/streams', selector, fields, { what: 'stream', listHint: 'list streams with GET /gw/streams/all' }, signal);
  }

  channelProtocols(selector: string | number = 'all', fields?: string[], signal?: AbortSignal): Promise<FlespiList> {
    return this.list('/gw/channel-protocols', selector, fields, { what: 'channel protocol', listHint: 'list protocols with GET /gw/channel-protocols/all' }, signal);
  }

  /** Style A: the next batch of the channel buffer after `currKey`, long-polling up to `timeout` seconds. */
  async pollChannelMessages(channelId: number, params: PollParams, signal?: AbortSignal): Promise<PollResult> {
    const timeout = params.timeout ?? 0;
    if (!Number.isFinite(timeout) || timeout < 0 || timeout > MAX_POLL_TIMEOUT_S) {
      throw new FlespiError('bad-request', `poll timeout ${timeout} s is out of range: flespi long-polls at most ${MAX_POLL_TIMEOUT_S} s; use 0..${MAX_POLL_TIMEOUT_S}`);
    }
    const data: Record<string, unknown> = { curr_key: params.currKey };
    if (params.limitCount !== undefined) data.limit_count = params.limitCount;
    if (params.limitSize !== undefined) data.limit_size = params.limitSize;
    if (timeout > 0) data.timeout = timeout;
    if (params.delete) data.delete = true;
    const body = await this.request('GET', `/gw/channels/${channelId}/messages?data=${encodeData(data)}`, channelSubject(channelId), signal, this.timeoutMs + timeout * 1000);
    const messages = resultOf<FlespiMessage>(body, this.subjectLabel('GET', channelSubject(channelId)), channelSubject(channelId));
    const nextKey = typeof body.next_key === 'number' ? body.next_key : undefined;
    return { messages, nextKey };
  }

  /** Style B: channel messages in a `server.timestamp` range. */
  channelMessages(channelId: number, params: ChannelHistoryParams = {}, signal?: AbortSignal): Promise<FlespiMessage[]> {
    return this.result<FlespiMessage>('GET', `/gw/channels/${channelId}/messages?data=${encodeData(historyData(params))}`, channelSubject(channelId), signal);
  }

  /** Deletes every message of the channel buffer with a key below `deleteKey` (≥ 2, usually a `next_key`). */
  async deleteChannelMessages(channelId: number, deleteKey: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isInteger(deleteKey) || deleteKey < 2) {
      throw new FlespiError('bad-request', `delete key ${deleteKey} is invalid: flespi deletes keys below delete_key, so it must be an integer ≥ 2 (a next_key)`);
    }
    await this.result('DELETE', `/gw/channels/${channelId}/messages?data=${encodeData({ delete_key: deleteKey })}`, channelSubject(channelId), signal);
  }

  /** Device messages in a device `timestamp` range; several devices are merged by time. */
  deviceMessages(selector: string | number, params: DeviceHistoryParams = {}, signal?: AbortSignal): Promise<FlespiMessage[]> {
    const data = historyData(params);
    if (params.fields && params.fields.length > 0) data.fields = params.fields.join(',');
    const subject = { what: `device ${selector}`, listHint: 'list devices with GET /gw/devices/all' };
    return this.result<FlespiMessage>('GET', `/gw/devices/${encodeSelector(selector)}/messages?data=${encodeData(data)}`, subject, signal);
  }

  private async list(base: string, selector: string | number, fields: string[] | undefined, subject: RequestSubject, signal?: AbortSignal): Promise<FlespiList> {
    const query = fields && fields.length > 0 ? `?fields=${encodeURIComponent(fields.join(','))}` : '';
    const named = { ...subject, what: `${subject.what} ${selector}` };
    const body = await this.request('GET', `${base}/${encodeSelector(selector)}${query}`, named, signal);
    const items = Array.isArray(body.result) ? (body.result as FlespiItem[]) : [];
    const errors = Array.isArray(body.errors) ? (body.errors as FlespiErrorDetail[]) : [];
    if (!Array.isArray(body.result) && errors.length === 0) throw malformed(this.subjectLabel('GET', named), 200, 'no "result" array');
    if (items.length === 0 && errors.length > 0) throw envelopeError(errors, this.subjectLabel('GET', named), named);
    return { items, errors };
  }

  /** The `result` array of a request whose envelope must carry no `errors`. */
  private async result<T>(method: 'GET' | 'DELETE', path: string, subject: RequestSubject, signal?: AbortSignal): Promise<T[]> {
    const body = await this.request(method, path, subject, signal);
    return resultOf<T>(body, this.subjectLabel(method, subject), subject);
  }

  private subjectLabel(method: string, subject: RequestSubject): string {
    return `${method} ${subject.what} at ${this.baseUrl}`;
  }

  /** Sends one request and returns the parsed envelope of a 2xx answer; anything else becomes a FlespiError. */
  private async request(method: 'GET' | 'DELETE', path: string, subject: RequestSubject, signal?: AbortSignal, timeoutMs = this.timeoutMs): Promise<Record<string, unknown>> {
    if (signal?.aborted) throw abortError(signal);
    let response: AxiosResponse<string>;
    try {
      response = await this.http.request<string>({ method, url: path, signal, timeout: timeoutMs });
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      // The axios error carries the request headers (the token): never pass it on as a cause.
      throw transportError(error, this.baseUrl, timeoutMs);
    }
    return parseAnswer(response, this.subjectLabel(method, subject), subject, this.baseUrl);
  }
}

function channelSubject(channelId: number): RequestSubject {
  return { what: `channel ${channelId}`, listHint: 'check the channel id; list channels with `flespi-receiver channels`' };
}

function historyData(params: ChannelHistoryParams): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (params.from !== undefined) data.from = params.from;
  if (params.to !== undefined) data.to = params.to;
  if (params.count !== undefined) data.count = params.count;
  if (params.reverse !== undefined) data.reverse = params.reverse;
  if (params.filter !== undefined) data.filter = params.filter;
  return data;
}

function encodeData(data: Record<string, unknown>): string {
  return encodeURIComponent(JSON.stringify(data));
}

/** Keeps `,` `=` `*` readable in selectors like `1,2` or `name=car*`; encodes the rest. */
function encodeSelector(selector: string | number): string {
  return encodeURIComponent(String(selector)).replace(/%2C/gi, ',').replace(/%3D/gi, '=');
}

function resultOf<T>(body: Record<string, unknown>, label: string, subject?: RequestSubject): T[] {
  const errors = Array.isArray(body.errors) ? (body.errors as FlespiErrorDetail[]) : [];
  if (errors.length > 0) throw envelopeError(errors, label, subject);
  if (!Array.isArray(body.result)) throw malformed(label, 200, 'no "result" array');
  return body.result as T[];
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function parseAnswer(response: AxiosResponse<string>, label: string, subject: RequestSubject, baseUrl: string): Record<string, unknown> {
  const status = response.status;
  const text = typeof response.data === 'string' ? response.data : '';
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  const envelope = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  if (status >= 200 && status < 300) {
    if (!envelope) throw malformed(label, status, text === '' ? 'an empty body' : `"${preview(text)}"`);
    return envelope;
  }
  if (status === 404 && !envelope && text !== '') {
    // flespi answers an unknown id with its JSON envelope; a 404 page means the base URL is not flespi's API.
    throw new FlespiError('not-found', `${baseUrl} answered ${label} with 404 and a page that is not flespi's JSON: the base URL (or region) does not point at the flespi REST API; use https://flespi.io or https://ru.flespi.io`, { status });
  }
  const details = Array.isArray(envelope?.errors) ? (envelope.errors as FlespiErrorDetail[]) : [];
  throw statusError(status, details, label, subject, baseUrl, retryAfterSeconds(response.headers['retry-after']));
}

function statusError(status: number, details: FlespiErrorDetail[], label: string, subject: RequestSubject, baseUrl: string, retryAfter: number | undefined): FlespiError {
  const reasons = details.map((d) => d.reason).filter((r): r is string => typeof r === 'string' && r !== '');
  const said = reasons.length > 0 ? `: ${reasons.join('; ')}` : '';
  const statusText = `${status} ${STATUS_TEXT[status] ?? 'HTTP error'}`;
  const options = { status, details, retryAfter };
  let kind: FlespiErrorKind;
  let message: string;
  if (status === 401) {
    kind = 'auth';
    message = `flespi rejected the token (${statusText}${said}) on ${label}: check the token at https://flespi.io/#/panel/tokens or set a new one`;
  } else if (status === 403) {
    kind = 'forbidden';
    message = `flespi refused access (${statusText}${said}) on ${label}: the token or account is blocked, or the token's ACL does not allow this; check the token and the account limits at https://flespi.io/#/panel`;
  } else if (status === 404) {
    kind = 'not-found';
    message = `${subject.what} not found (${statusText}${said}) at ${baseUrl}: ${subject.listHint ?? 'check the id and the base URL'}`;
  } else if (status === 400) {
    kind = 'bad-request';
    message = `flespi rejected the request parameters (${statusText}${said}) on ${label}: fix the parameter it names (e.g. the filter expression) and try again`;
  } else if (status === 429) {
    kind = 'rate-limited';
    const wait = retryAfter !== undefined ? `wait ${retryAfter} s` : 'wait a little';
    message = `flespi rate limit hit (${statusText}${said}) on ${label}: too many requests for this account; ${wait} and retry, or poll less often`;
  } else if (status >= 500) {
    kind = 'server';
    message = `flespi server error (${statusText}${said}) on ${label}: usually temporary; retry later, and check https://status.flespi.io if it persists`;
  } else {
    kind = 'malformed';
    message = `unexpected answer (${statusText}${said}) on ${label}: check that the base URL points at the flespi REST API (https://flespi.io or https://ru.flespi.io)`;
  }
  return new FlespiError(kind, message, options);
}

/** Errors inside a 2xx envelope: the request reached flespi but was (partly) refused. */
function envelopeError(details: FlespiErrorDetail[], label: string, subject?: RequestSubject): FlespiError {
  const reasons = details.map((d) => `${d.reason ?? 'error'}${d.code !== undefined ? ` (code ${d.code})` : ''}${d.id !== undefined ? ` [id ${d.id}]` : ''}`);
  const kind: FlespiErrorKind = details.some((d) => d.code === 3) ? 'forbidden' : 'bad-request';
  const hint = kind === 'forbidden' ? "check the token's ACL at https://flespi.io/#/panel/tokens" : (subject?.listHint ?? 'check the request parameters');
  return new FlespiError(kind, `flespi answered ${label} with errors: ${reasons.join('; ')}; ${hint}`, { status: 200, details });
}

function malformed(label: string, status: number, what: string): FlespiError {
  return new FlespiError(
    'malformed',
    `flespi answered ${label} with ${what} instead of its JSON envelope (HTTP ${status}): check that the base URL points at the flespi REST API (https://flespi.io or https://ru.flespi.io); retry if it was a glitch`,
    { status },
  );
}

function transportError(error: unknown, baseUrl: string, timeoutMs: number): FlespiError {
  const code = axios.isAxiosError(error) ? error.code : undefined;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new FlespiError('timeout', `no answer from ${baseUrl} within ${Math.round(timeoutMs / 100) / 10} s: the server is slow or unreachable; check your network, or raise the request timeout`);
  }
  const cause = code ?? (error instanceof Error ? error.message : String(error));
  return new FlespiError('network', `cannot reach ${baseUrl} (${cause}): check the base URL / region and your network`);
}

function retryAfterSeconds(header: unknown): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 60)}…` : flat;
}

/** The error an aborted request rejects with: the abort reason when it is an AbortError, else a new one. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error('the request was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/** True for the rejection of an aborted request. */
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}
