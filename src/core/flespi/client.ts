import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { deadline } from '../deadline';
import { FlespiError, type FlespiErrorDetail, type FlespiErrorKind } from '../errors';
import type { FlespiMessage } from '../message';
import { MAX_TIMER_MS } from '../backoff';
import { redactUrl } from '../security';

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

/**
 * The longest wait a `Retry-After` header can impose, in seconds. A longer one (seen: 3,000,000) is
 * clamped to this: such a value is a broken or hostile server, not a rate limit (flespi's own limits are
 * per minute), and it must neither stop a receiver for weeks nor reach a timer: Node turns any delay
 * above 2^31-1 ms (24.8 days) into 1 ms, which would make the receiver poll in a tight loop.
 */
export const MAX_RETRY_AFTER_S = 600;

/**
 * What an answer may weigh per message asked for, when no `limit_size` caps the poll: 64 KiB, far
 * above a tracker message (typically 0.5–2 KB, a few KB with CAN data), so limit_count 1000 allows
 * 62.5 MiB. Beyond the cap the answer is dropped while it arrives, so a runaway or hostile server
 * cannot fill the memory (a 700 MB answer used to take the CLI to 805 MB RSS).
 */
export const BODY_BYTES_PER_MESSAGE = 64 * 1024;
/** The smallest body cap of a poll, and the slack above `limit_size` (flespi includes the message that crosses it). */
const BODY_SLACK_BYTES = 16 * 1024 * 1024;
/** The body cap of every other request (lists, history ranges, token info) unless `maxBodyBytes` says otherwise. */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024;
/** No cap goes beyond this: V8 cannot hold a longer string (the body is read as text). */
const MAX_BODY_BYTES = 512 * 1024 * 1024;

export interface FlespiClientOptions {
  /** The 64-character flespi token, bare or with the `FlespiToken ` prefix. */
  token: string;
  baseUrl?: string;
  /**
   * How long a request may take from start to its last byte (default 40 s); long-polls get their wait on
   * top of it. A server that answers slowly (even a byte at a time) fails with a `timeout` FlespiError.
   */
  timeoutMs?: number;
  /** Largest answer body of a request other than a poll (default 256 MiB); polls derive theirs from limit_size / limit_count. */
  maxBodyBytes?: number;
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

/**
 * Items asked for per page of a collection (`limit`). flespi documents `limit`/`offset` and a
 * `pagination` object on collections (SKILL.md) but not the largest page; a third-party description
 * says 1..1000. The client follows `pagination.limit` when the server answers a smaller page.
 */
export const COLLECTION_PAGE_LIMIT = 1000;
/** No listing goes past this many pages (a server that ignores `offset` is caught earlier: a page with no new id ends it). */
const MAX_COLLECTION_PAGES = 10_000;

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
  /** The one id asked for, when there is one: an envelope error naming it means it was not found. */
  id?: number;
}

/**
 * The flespi REST API (https://flespi.io/rest-api) for reading channels, devices and messages.
 * It classifies every failure as a FlespiError; retrying is the caller's job.
 */
export class FlespiClient {
  /** The base URL as shown in messages and logs: without a `user:password@` part. */
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly http: AxiosInstance;
  /** flespi's clock minus ours (ms) lies in [lo, hi]: narrowed by every `Date` header, reset when samples disagree or grow old. */
  private skew?: { lo: number; hi: number; since: number };
  /** The newest `server.timestamp` (ms) of a message this client read. */
  private newestServerStampMs = 0;
  /** False once a server refused `limit`/`offset` on a collection: list without them from then on. */
  private pagesCollections = true;

  constructor(options: FlespiClientOptions) {
    const token = options.token.trim().replace(/^FlespiToken\s+/i, '');
    if (token === '') throw new FlespiError('auth', 'no flespi token given: create one at https://flespi.io/#/panel/tokens and set it');
    // eslint-disable-next-line no-control-regex -- control characters would corrupt the header
    if (/[\s\u0000-\u001f\u007f]/.test(token))
      throw new FlespiError('auth', 'the flespi token contains spaces or control characters: paste only the token itself (64 letters and digits)');
    const baseUrl = (options.baseUrl ?? REGION_BASE_URLS.eu).replace(/\/+$/, '');
    this.baseUrl = redactUrl(baseUrl);
    if (!/^https?:\/\/[^/]/.test(baseUrl)) {
      throw new FlespiError(
        'bad-request',
        `the base URL "${this.baseUrl}" is not an http(s) URL: use https://flespi.io, https://ru.flespi.io or a sandbox URL like http://127.0.0.1:9005`,
      );
    }
    this.timeoutMs = boundedMs(options.timeoutMs ?? 40_000);
    this.maxBodyBytes = boundedBytes(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    const headers: Record<string, string> = { Authorization: `FlespiToken ${token}`, Accept: 'application/json' };
    if (options.appName) headers['x-flespi-app'] = options.appName.slice(0, 63);
    this.http = axios.create({
      baseURL: baseUrl,
      headers,
      // Every status and body is classified here, not by axios.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      maxRedirects: 0,
    });
  }

  /**
   * flespi's clock now, in ms since the epoch: for anything time-based (a gap fill's `to`), so a local
   * clock behind flespi's loses nothing. An upper estimate: every answer's `Date` header (1-s
   * resolution) bounds the skew from both sides, and the estimate is the upper bound, i.e. at least
   * flespi's time, at most about a second plus a round trip ahead of it; never earlier than the newest
   * `server.timestamp` this client has read. Before any answer it is the local clock. Callers add their
   * own margin on top (a message may be stamped a moment before it becomes readable).
   */
  serverNow(): number {
    const local = Date.now();
    const skewed = this.skew ? local + this.skew.hi : local;
    return Math.max(skewed, this.newestServerStampMs);
  }

  /** flespi's clock minus the local clock in ms (the middle of the estimate), or undefined before the first answer with a `Date` header. */
  get clockSkewMs(): number | undefined {
    return this.skew && Math.round((this.skew.lo + this.skew.hi) / 2);
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
    return this.list(
      '/gw/channel-protocols',
      selector,
      fields,
      { what: 'channel protocol', listHint: 'list protocols with GET /gw/channel-protocols/all' },
      signal,
    );
  }

  /** Style A: the next batch of the channel buffer after `currKey`, long-polling up to `timeout` seconds. */
  async pollChannelMessages(channelId: number, params: PollParams, signal?: AbortSignal): Promise<PollResult> {
    const timeout = params.timeout ?? 0;
    if (!Number.isFinite(timeout) || timeout < 0 || timeout > MAX_POLL_TIMEOUT_S) {
      throw new FlespiError(
        'bad-request',
        `poll timeout ${timeout} s is out of range: flespi long-polls at most ${MAX_POLL_TIMEOUT_S} s; use 0..${MAX_POLL_TIMEOUT_S}`,
      );
    }
    const data: Record<string, unknown> = { curr_key: params.currKey };
    if (params.limitCount !== undefined) data.limit_count = params.limitCount;
    if (params.limitSize !== undefined) data.limit_size = params.limitSize;
    if (timeout > 0) data.timeout = timeout;
    if (params.delete) data.delete = true;
    const limits = { deadlineMs: this.timeoutMs + timeout * 1000, maxBytes: pollBodyCap(params), capReason: pollCapReason(params) };
    const body = await this.request('GET', `/gw/channels/${channelId}/messages?data=${encodeData(data)}`, channelSubject(channelId), signal, limits);
    const messages = resultOf<FlespiMessage>(body, this.subjectLabel('GET', channelSubject(channelId)), channelSubject(channelId));
    this.noteStamps(messages);
    const nextKey = typeof body.next_key === 'number' ? body.next_key : undefined;
    return { messages, nextKey };
  }

  /** Style B: channel messages in a `server.timestamp` range. */
  async channelMessages(channelId: number, params: ChannelHistoryParams = {}, signal?: AbortSignal): Promise<FlespiMessage[]> {
    const messages = await this.result<FlespiMessage>(
      'GET',
      `/gw/channels/${channelId}/messages?data=${encodeData(historyData(params))}`,
      channelSubject(channelId),
      signal,
    );
    this.noteStamps(messages);
    return messages;
  }

  /** Deletes every message of the channel buffer with a key below `deleteKey` (≥ 2, usually a `next_key`). */
  async deleteChannelMessages(channelId: number, deleteKey: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isInteger(deleteKey) || deleteKey < 2) {
      throw new FlespiError(
        'bad-request',
        `delete key ${deleteKey} is invalid: flespi deletes keys below delete_key, so it must be an integer ≥ 2 (a next_key)`,
      );
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

  /**
   * A collection, page by page: `limit`/`offset` until a page comes back shorter than the page size
   * (the server's `pagination.limit` when it answers one), or adds no new id (a server that ignores
   * `offset`). A first page refused as a bad request (400) is asked once more without `limit`/`offset`
   * (a server without paging), and this client does not page again. Per-id errors of every page are kept (partial success).
   */
  private async list(
    base: string,
    selector: string | number,
    fields: string[] | undefined,
    subject: RequestSubject,
    signal?: AbortSignal,
  ): Promise<FlespiList> {
    const named: RequestSubject = {
      ...subject,
      what: `${subject.what} ${selector}`,
      id: typeof selector === 'number' ? selector : /^\d+$/.test(selector) ? Number(selector) : undefined,
    };
    const path = `${base}/${encodeSelector(selector)}`;
    const fieldsQuery = fields && fields.length > 0 ? `fields=${encodeURIComponent(fields.join(','))}` : '';
    const items: FlespiItem[] = [];
    const errors: FlespiErrorDetail[] = [];
    const ids = new Set<unknown>();
    for (let offset = 0, pages = 0; pages < MAX_COLLECTION_PAGES; pages++) {
      let paging = this.pagesCollections ? `limit=${COLLECTION_PAGE_LIMIT}&offset=${offset}` : '';
      const query = [fieldsQuery, paging].filter((q) => q !== '').join('&');
      let body: Record<string, unknown>;
      try {
        body = await this.request('GET', `${path}${query ? `?${query}` : ''}`, named, signal);
      } catch (error) {
        if (!(paging !== '' && offset === 0 && error instanceof FlespiError && error.kind === 'bad-request')) throw error;
        // Perhaps a server without paging: ask for everything at once. If that is refused too, the
        // request itself is wrong (an unknown field, say) and its own error says why.
        body = await this.request('GET', `${path}${fieldsQuery ? `?${fieldsQuery}` : ''}`, named, signal);
        this.pagesCollections = false;
        paging = '';
      }
      const page = Array.isArray(body.result) ? (body.result as FlespiItem[]) : [];
      if (Array.isArray(body.errors)) errors.push(...(body.errors as FlespiErrorDetail[]));
      if (!Array.isArray(body.result) && errors.length === 0) throw malformed(this.subjectLabel('GET', named), 200, 'no "result" array');
      let fresh = 0;
      for (const item of page) {
        const key = item.id ?? item;
        if (ids.has(key)) continue;
        ids.add(key);
        items.push(item);
        fresh++;
      }
      if (paging === '' || page.length === 0 || fresh === 0) break;
      const pagination = body.pagination as { limit?: unknown } | undefined;
      const pageSize =
        typeof pagination?.limit === 'number' && pagination.limit > 0 ? Math.min(pagination.limit, COLLECTION_PAGE_LIMIT) : COLLECTION_PAGE_LIMIT;
      if (page.length < pageSize) break;
      offset += page.length;
    }
    if (items.length === 0 && errors.length > 0) throw envelopeError(errors, this.subjectLabel('GET', named), named);
    return { items, errors };
  }

  /** Remembers the newest `server.timestamp` read (a lower bound of flespi's clock). */
  private noteStamps(messages: readonly FlespiMessage[]): void {
    for (const message of messages) {
      const stamp = message['server.timestamp'];
      if (typeof stamp === 'number' && Number.isFinite(stamp) && stamp * 1000 > this.newestServerStampMs) this.newestServerStampMs = stamp * 1000;
    }
  }

  /**
   * Narrows the clock skew with one answer's `Date` header: flespi wrote it after the request left
   * (`sentAt`) and before the answer arrived (`receivedAt`), with whole seconds, so
   * skew ∈ [date − receivedAt, date + 1 s − sentAt]. Samples intersect for 10 minutes; one that does
   * not fit (a clock was set) starts over.
   */
  private noteDate(header: unknown, sentAt: number, receivedAt: number): void {
    if (typeof header !== 'string') return;
    const date = Date.parse(header);
    if (Number.isNaN(date)) return;
    let lo = date - receivedAt;
    let hi = date + 1000 - sentAt;
    const previous = this.skew;
    let since = receivedAt;
    if (previous && receivedAt - previous.since < 600_000) {
      const narrowLo = Math.max(lo, previous.lo);
      const narrowHi = Math.min(hi, previous.hi);
      if (narrowLo <= narrowHi) {
        lo = narrowLo;
        hi = narrowHi;
        since = previous.since;
      }
    }
    this.skew = { lo, hi, since };
  }

  /** The `result` array of a request whose envelope must carry no `errors`. */
  private async result<T>(method: 'GET' | 'DELETE', path: string, subject: RequestSubject, signal?: AbortSignal): Promise<T[]> {
    const body = await this.request(method, path, subject, signal);
    return resultOf<T>(body, this.subjectLabel(method, subject), subject);
  }

  private subjectLabel(method: string, subject: RequestSubject): string {
    return `${method} ${subject.what} at ${this.baseUrl}`;
  }

  /**
   * Sends one request and returns the parsed envelope of a 2xx answer; anything else becomes a FlespiError.
   * The whole exchange, last body byte included, must finish within `deadlineMs` (axios' own `timeout`
   * is only a socket idle timeout in Node: a server dripping one byte at a time would never trip it), and
   * the body may not exceed `maxBytes` (it is dropped as it arrives). Both fail as retryable errors.
   */
  private async request(
    method: 'GET' | 'DELETE',
    path: string,
    subject: RequestSubject,
    signal?: AbortSignal,
    limits: RequestLimits = {},
  ): Promise<Record<string, unknown>> {
    if (signal?.aborted) throw abortError(signal);
    const deadlineMs = boundedMs(limits.deadlineMs ?? this.timeoutMs);
    const maxBytes = boundedBytes(limits.maxBytes ?? this.maxBodyBytes);
    const limit = deadline(deadlineMs, signal);
    let response: AxiosResponse<string>;
    const sentAt = Date.now();
    try {
      response = await this.http.request<string>({ method, url: path, signal: limit.signal, timeout: deadlineMs, maxContentLength: maxBytes });
      this.noteDate(response.headers.date, sentAt, Date.now());
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      const label = this.subjectLabel(method, subject);
      if (limit.passed)
        throw deadlineError(
          this.baseUrl,
          `${method} ${subject.what}, the whole answer`,
          deadlineMs,
          limits.deadlineMs !== undefined && limits.deadlineMs > this.timeoutMs ? this.timeoutMs : undefined,
        );
      if (isMaxContentLengthError(error)) throw tooLargeError(label, maxBytes, limits.capReason);
      // The axios error carries the request headers (the token): never pass it on as a cause.
      throw transportError(error, this.baseUrl, deadlineMs);
    } finally {
      limit.dispose();
    }
    return parseAnswer(response, this.subjectLabel(method, subject), subject, this.baseUrl);
  }
}

interface RequestLimits {
  /** From the start of the request to the last byte of the answer. Default: the client's `timeoutMs`. */
  deadlineMs?: number;
  /** Largest body accepted. Default: the client's `maxBodyBytes`. */
  maxBytes?: number;
  /** How the cap was chosen, for the error (e.g. `limit_count 1000 × 64 KiB`). */
  capReason?: string;
}

/** A delay a timer can take: Node turns anything above 2^31-1 ms into 1 ms. */
function boundedMs(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.min(Math.ceil(ms), MAX_TIMER_MS) : MAX_TIMER_MS;
}

function boundedBytes(bytes: number): number {
  return Number.isFinite(bytes) && bytes > 0 ? Math.min(Math.floor(bytes), MAX_BODY_BYTES) : MAX_BODY_BYTES;
}

/**
 * The largest answer a poll may have: `limit_size` plus 16 MiB (flespi includes the message that crosses
 * the limit, and the envelope), else `limit_count` × 64 KiB, at least 16 MiB; a poll with neither
 * limit gets the default cap.
 */
export function pollBodyCap(params: Pick<PollParams, 'limitCount' | 'limitSize'>): number {
  if (params.limitSize !== undefined && params.limitSize > 0) return boundedBytes(params.limitSize + BODY_SLACK_BYTES);
  if (params.limitCount !== undefined && params.limitCount > 0) return boundedBytes(Math.max(BODY_SLACK_BYTES, params.limitCount * BODY_BYTES_PER_MESSAGE));
  return DEFAULT_MAX_BODY_BYTES;
}

function pollCapReason(params: Pick<PollParams, 'limitCount' | 'limitSize'>): string {
  if (params.limitSize !== undefined && params.limitSize > 0) return `limit_size ${params.limitSize} bytes plus ${mib(BODY_SLACK_BYTES)} for the last message`;
  if (params.limitCount !== undefined && params.limitCount > 0)
    return `limit_count ${params.limitCount} × ${BODY_BYTES_PER_MESSAGE / 1024} KiB per message; set limitSize if your messages are larger`;
  return 'the default cap';
}

function mib(bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB`;
}

function channelSubject(channelId: number): RequestSubject {
  return { what: `channel ${channelId}`, listHint: 'check the channel id; list channels with `flespi-receiver channels`', id: channelId };
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
    throw new FlespiError(
      'not-found',
      `${baseUrl} answered ${label} with 404 and a page that is not flespi's JSON: the base URL (or region) does not point at the flespi REST API; use https://flespi.io or https://ru.flespi.io`,
      { status },
    );
  }
  const details = Array.isArray(envelope?.errors) ? (envelope.errors as FlespiErrorDetail[]) : [];
  throw statusError(status, details, label, subject, baseUrl, retryAfterSeconds(response.headers['retry-after']));
}

function statusError(
  status: number,
  details: FlespiErrorDetail[],
  label: string,
  subject: RequestSubject,
  baseUrl: string,
  retryAfter: number | undefined,
): FlespiError {
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

/** A reason that says an item does not exist, in the words flespi (or an HTTP-style server) may use. */
const NOT_FOUND_REASON = /not\s+found|does\s*n[o']t\s+exist|no\s+such|unknown\s+\w+\s+id/i;

/**
 * What errors inside a 2xx envelope mean. flespi's codes are small integers (2 bad request, 3 not
 * permitted by ACL); flespi's own SKILL.md also shows HTTP statuses in `code` (404 not found), so
 * both are read: 3/403 forbidden, 401 auth, 404 or a "not found" reason (or an error naming the one id
 * asked for, without another meaning) not found, anything else a bad request.
 */
export function envelopeKind(details: readonly FlespiErrorDetail[], askedId?: number): FlespiErrorKind {
  if (details.some((d) => d.code === 3 || d.code === 403)) return 'forbidden';
  if (details.some((d) => d.code === 401)) return 'auth';
  const notFound = (d: FlespiErrorDetail) =>
    d.code === 404 || (typeof d.reason === 'string' && NOT_FOUND_REASON.test(d.reason)) || (askedId !== undefined && d.id === askedId && d.code !== 2);
  if (details.length > 0 && details.every(notFound)) return 'not-found';
  return 'bad-request';
}

/** Errors inside a 2xx envelope: the request reached flespi but was (partly) refused. */
function envelopeError(details: FlespiErrorDetail[], label: string, subject?: RequestSubject): FlespiError {
  const reasons = details.map((d) => `${d.reason ?? 'error'}${d.code !== undefined ? ` (code ${d.code})` : ''}${d.id !== undefined ? ` [id ${d.id}]` : ''}`);
  const kind = envelopeKind(details, subject?.id);
  const hint =
    kind === 'forbidden'
      ? "check the token's ACL at https://flespi.io/#/panel/tokens"
      : kind === 'auth'
        ? 'check the token at https://flespi.io/#/panel/tokens or set a new one'
        : kind === 'not-found'
          ? `${subject?.what ?? 'the item'} not found: ${subject?.listHint ?? 'check the id'}`
          : (subject?.listHint ?? 'check the request parameters');
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
    return new FlespiError(
      'timeout',
      `no answer from ${baseUrl} within ${Math.round(timeoutMs / 100) / 10} s: the server is slow or unreachable; check your network, or raise the request timeout`,
    );
  }
  const cause = code ?? (error instanceof Error ? error.message : String(error));
  return new FlespiError('network', `cannot reach ${baseUrl} (${cause}): check the base URL / region and your network`);
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date), at most MAX_RETRY_AFTER_S. */
export function retryAfterSeconds(header: unknown): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, MAX_RETRY_AFTER_S);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.min(MAX_RETRY_AFTER_S, Math.max(0, Math.ceil((date - Date.now()) / 1000)));
}

function isMaxContentLengthError(error: unknown): boolean {
  return axios.isAxiosError(error) && /maxContentLength/.test(error.message);
}

function deadlineError(baseUrl: string, what: string, deadlineMs: number, marginMs: number | undefined): FlespiError {
  const why = marginMs === undefined ? `${what}` : `the long-poll wait plus ${seconds(marginMs)} s; ${what}`;
  return new FlespiError(
    'timeout',
    `no answer from ${baseUrl} within ${seconds(deadlineMs)} s (${why}): the server is slow or the connection stalls; check your network, or raise the request timeout (flespi.timeoutMs in a config file)`,
  );
}

function tooLargeError(label: string, maxBytes: number, reason: string | undefined): FlespiError {
  return new FlespiError(
    'malformed',
    `the answer to ${label} is larger than ${mib(maxBytes)}${reason ? ` (${reason})` : ''}: it was dropped while arriving; lower limitCount or set limitSize, and check that the base URL points at the flespi REST API`,
  );
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
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
