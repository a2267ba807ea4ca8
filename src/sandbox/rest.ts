// The sandbox REST API: the flespi endpoints a message consumer uses (see docs §9 of the flespi
// reference), plus the sandbox-only control API under /sandbox/ (NOT part of flespi).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isFaultKind, type Fault, type FaultQueue } from './faults';
import { compileFilter, FilterSyntaxError } from './filter';
import type { StoredMessage } from './log';
import { messageProjection, parseSelector, projectItem, selectItems, SelectorError, type Item, type Selector } from './selectors';
import { SandboxInputError, type SandboxChannel, type SandboxDevice, type SandboxStore } from './store';
import type { TokenRegistry } from './tokens';

/** What the control API can do beyond the store; implemented by the Sandbox. */
export interface SandboxControl {
  info(): Record<string, unknown>;
  inject(channelId: number, messages: unknown[]): StoredMessage[];
  dropMqttClients(): number;
  setSimulation(settings: { rateHz?: number; running?: boolean }): unknown;
}

/** How the sandbox answers where flespi's behaviour is uncertain (docs/flespi-assumptions.md), so a client can be tested against each form. */
export interface RestOptions {
  /**
   * `errors[].code`: `flespi` (default) small integers, 2 for a refused request (400, unknown ids) and
   * 3 for a refusal by permission (403), as the 2018 swagger and real answers show; 1 for the rest
   * (no source gives those). `http`: the HTTP status, as flespi's SKILL.md example shows.
   */
  errorCodes?: 'flespi' | 'http';
  /** Listed ids of which none exists: 404 (default) or 200 with `errors` beside an empty `result`. */
  notFoundStatus?: 404 | 200;
  /** false: key-based reading (`curr_key`, `next_key`, `delete_key`) is refused with 400 code 2, as an API that reads only by time would. */
  keyReading?: boolean;
  /** Items a collection answers without `limit`, and the largest `limit` (default: everything, no cap). */
  collectionLimit?: number;
}

export interface RestContext {
  store: SandboxStore;
  tokens: TokenRegistry;
  faults: FaultQueue;
  control: SandboxControl;
  options?: RestOptions;
}

/** flespi's error item: code (see RestOptions.errorCodes), reason, and the id it is about. */
interface ErrorItem {
  code: number;
  reason: string;
  id?: number;
}

/** The `code` of an error answered with HTTP `status` (see RestOptions.errorCodes). */
function errorCode(status: number, style: RestOptions['errorCodes']): number {
  if (style === 'http') return status;
  if (status === 400 || status === 404) return 2;
  if (status === 403) return 3;
  return 1;
}

/** A request that fails with an HTTP status and flespi's `errors` body. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: ErrorItem[],
  ) {
    super(errors.map((e) => e.reason).join('; '));
  }
}

function badRequest(reason: string): HttpError {
  return new HttpError(400, [{ code: 400, reason }]);
}

const MAX_POLL_TIMEOUT_S = 30;
const MAX_BODY_BYTES = 256 * 1024 * 1024;
const STYLE_A_KEYS = ['curr_key', 'limit_count', 'limit_size', 'timeout', 'delete'];
const STYLE_B_KEYS = ['from', 'to', 'count', 'reverse', 'filter'];
const DEVICE_KEYS = [...STYLE_B_KEYS, 'fields'];

const COLLECTIONS: Readonly<Record<string, { noun: string; items: (store: SandboxStore) => Item[]; aliases?: Record<string, string> }>> = {
  channels: { noun: 'channel', items: (s) => [...s.channels.values()].map((c) => c.item) },
  devices: {
    noun: 'device',
    items: (s) => [...s.devices.values()].map((d) => d.item),
    aliases: { ident: 'configuration.ident', phone: 'configuration.phone' },
  },
  streams: { noun: 'stream', items: (s) => s.streams },
  'channel-protocols': { noun: 'channel protocol', items: (s) => s.protocols },
};

export class RestServer {
  private readonly server: Server;
  /** Long-polls waiting for messages, per channel id. */
  private readonly waiters = new Map<number, Set<() => void>>();
  private readonly unsubscribe: () => void;
  private closing = false;
  private readonly options: RestOptions;

  constructor(private readonly ctx: RestContext) {
    this.options = ctx.options ?? {};
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.fail(res, error));
    });
    this.server.keepAliveTimeout = 65_000;
    this.unsubscribe = ctx.store.onIngest((channel) => {
      const waiting = this.waiters.get(channel.id);
      if (!waiting) return;
      this.waiters.delete(channel.id);
      for (const wake of waiting) wake();
    });
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe();
    for (const waiting of this.waiters.values()) for (const wake of waiting) wake();
    this.waiters.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, 'http://sandbox');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const control = path === '/sandbox' || path.startsWith('/sandbox/');
    // flespi's clock (shifted by the clock offset option), as every answer's Date header.
    res.setHeader('Date', new Date(this.ctx.store.now()).toUTCString());
    if (!control) {
      const fault = this.ctx.faults.take(path);
      if (fault) return applyFault(fault, req, res, this.options.errorCodes);
    }
    this.authorize(req);
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const segments = path
      .split('/')
      .slice(1)
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          throw badRequest(`the path segment "${s}" is not valid URL encoding`);
        }
      });
    if (control) return this.handleControl(method, segments, body, res);

    if (path === '/auth/info' && method === 'GET') {
      return sendResult(res, [this.tokenInfo(req)]);
    }
    const [api, collection, selectorText, sub, ...rest] = segments;
    if (api === 'gw' && collection !== undefined && COLLECTIONS[collection] && selectorText !== undefined && rest.length === 0) {
      if (sub === undefined && method === 'GET') return this.listItems(collection, selectorText, url, res);
      if (sub === 'messages' && collection === 'channels' && (method === 'GET' || method === 'DELETE')) {
        const data = readData(url, rawUrl, body);
        if (this.options.keyReading === false) {
          const key = [...STYLE_A_KEYS, 'delete_key'].find((k) => k in data);
          if (key !== undefined)
            throw badRequest(`unknown parameter "${key}": read channel messages by time (from, to, count, reverse, filter on server.timestamp)`);
        }
        if (method === 'DELETE') return this.deleteChannelMessages(selectorText, data, res);
        return this.channelMessages(selectorText, data, res);
      }
      if (sub === 'messages' && collection === 'devices' && method === 'GET') {
        return this.deviceMessages(selectorText, readData(url, rawUrl, body), res);
      }
    }
    throw new HttpError(404, [
      {
        code: 2,
        reason: `${method} ${path} is not an endpoint of the flespi sandbox: it serves /auth/info, /gw/{channels,devices,streams,channel-protocols}/{selector}, their /messages, and /sandbox/*`,
      },
    ]);
  }

  private authorize(req: IncomingMessage): void {
    const header = req.headers.authorization;
    if (header === undefined || !/^FlespiToken\s+\S/i.test(header)) {
      throw new HttpError(401, [{ code: 1, reason: "the header 'Authorization: FlespiToken <token>' is required" }]);
    }
    const check = this.ctx.tokens.check(header);
    if (check === 'unknown') throw new HttpError(401, [{ code: 1, reason: 'invalid or expired token' }]);
    if (check === 'blocked') throw new HttpError(403, [{ code: 3, reason: 'token or customer is blocked' }]);
  }

  private tokenInfo(req: IncomingMessage): Item {
    return {
      id: this.ctx.tokens.idOf(req.headers.authorization ?? ''),
      cid: this.ctx.store.cid,
      access: { type: 1 },
      enabled: true,
      expire: 0,
      ttl: 31_536_000,
      ips: '',
      info: 'flespi sandbox token',
    };
  }

  private listItems(collection: string, selectorText: string, url: URL, res: ServerResponse): void {
    const spec = COLLECTIONS[collection] as (typeof COLLECTIONS)[string];
    const items = spec.items(this.ctx.store);
    const { found, missing } = this.select(spec.noun, items, selectorText, spec.aliases);
    const fieldsParam = url.searchParams.get('fields');
    let result: Item[] = found;
    if (fieldsParam !== null && fieldsParam.trim() !== '') {
      const fields = fieldsParam
        .split(',')
        .map((f) => f.trim())
        .filter((f) => f !== '');
      const known = new Set(items.flatMap((item) => Object.keys(item)));
      const unknown = fields.filter((f) => !known.has(f));
      if (unknown.length > 0 && items.length > 0) {
        throw badRequest(`unknown ${spec.noun} field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in fields: use some of ${[...known].join(', ')}`);
      }
      result = found.map((item) => projectItem(item, fields));
    }
    // Paging (SKILL.md): `limit`/`offset`, answered with a `pagination` object.
    const limitText = url.searchParams.get('limit');
    const offsetText = url.searchParams.get('offset');
    const cap = this.options.collectionLimit;
    if (limitText !== null || offsetText !== null || cap !== undefined) {
      const asked = limitText === null ? undefined : Number(limitText);
      const offset = offsetText === null ? 0 : Number(offsetText);
      if (asked !== undefined && (!Number.isInteger(asked) || asked < 1)) throw badRequest(`limit must be a positive integer, got "${limitText}"`);
      if (!Number.isInteger(offset) || offset < 0) throw badRequest(`offset must be an integer ≥ 0, got "${offsetText}"`);
      const limit = Math.min(asked ?? Infinity, cap ?? Infinity);
      const page = result.slice(offset, offset + limit);
      const body: Record<string, unknown> = {
        result: page,
        pagination: { limit: Number.isFinite(limit) ? limit : result.length, offset, count: result.length },
      };
      if (missing.length > 0) body.errors = missing.map((id) => this.notFound(spec.noun, id));
      return sendRaw(res, 200, JSON.stringify(body));
    }
    sendResult(
      res,
      result,
      missing.map((id) => this.notFound(spec.noun, id)),
    );
  }

  /** Items a selector picks; 404 when it lists ids and none exists, partial success when some do. */
  private select<T extends Item>(noun: string, items: readonly T[], selectorText: string, aliases?: Record<string, string>): { found: T[]; missing: number[] } {
    let selector: Selector;
    try {
      selector = parseSelector(selectorText, aliases);
    } catch (error) {
      if (error instanceof SelectorError) throw badRequest(error.message);
      throw error;
    }
    const picked = selectItems(items, selector);
    if (selector.kind === 'ids' && picked.found.length === 0)
      throw new HttpError(
        this.options.notFoundStatus ?? 404,
        picked.missing.map((id) => this.notFound(noun, id)),
      );
    return picked;
  }

  private channelsOf(selectorText: string): { channels: SandboxChannel[]; missing: number[] } {
    const store = this.ctx.store;
    const { found, missing } = this.select(
      'channel',
      [...store.channels.values()].map((c) => c.item),
      selectorText,
    );
    return { channels: found.map((item) => store.channel(item.id as number)), missing };
  }

  private async channelMessages(selectorText: string, data: Item, res: ServerResponse): Promise<void> {
    const { channels, missing } = this.channelsOf(selectorText);
    const errors = missing.map((id) => this.notFound('channel', id));
    const styleB = STYLE_B_KEYS.some((k) => k in data);
    if (styleB) {
      checkKeys(data, STYLE_B_KEYS, 'channel messages by time (from, to, count, reverse, filter)', STYLE_A_KEYS);
      const query = timeQuery(data);
      const merged = channels.flatMap((c) => {
        this.ctx.store.expire(c);
        return c.log.byServerTime(query);
      });
      if (channels.length > 1) merged.sort((a, b) => (query.reverse ? b.serverTs - a.serverTs : a.serverTs - b.serverTs));
      return sendRaw(
        res,
        200,
        envelope(
          merged.slice(0, query.count).map((e) => e.json),
          errors,
        ),
      );
    }
    checkKeys(data, STYLE_A_KEYS, 'channel buffer reads (curr_key, limit_count, limit_size, timeout, delete)', STYLE_B_KEYS);
    if (channels.length !== 1) throw badRequest('reading the channel buffer by curr_key works on one channel at a time: put a single channel id in the path');
    const channel = channels[0] as SandboxChannel;
    const currKey = integerParam(data, 'curr_key', 0, Number.MAX_SAFE_INTEGER, 0);
    const limitCount = integerParam(data, 'limit_count', 1, 1_000_000, 1_000_000);
    const limitSize = integerParam(data, 'limit_size', 1, 100_000_000, 100_000_000);
    const timeout = numberParam(data, 'timeout', 0, MAX_POLL_TIMEOUT_S, 0);
    const remove = booleanParam(data, 'delete', false);
    if (remove) channel.log.deleteBelow(currKey);
    this.ctx.store.expire(channel);
    let batch = channel.log.fromKey(currKey, limitCount, limitSize);
    if (batch.length === 0 && timeout > 0) {
      const deadline = Date.now() + timeout * 1000;
      while (batch.length === 0 && Date.now() < deadline) {
        const woken = await this.waitForMessages(channel.id, deadline - Date.now(), res);
        if (!woken) return; // the client went away or the sandbox stops
        batch = channel.log.fromKey(currKey, limitCount, limitSize);
      }
    }
    // Decision: on an empty result next_key stays at curr_key, so a client keeps its position.
    const last = batch[batch.length - 1];
    const nextKey = last ? last.key + 1 : currKey;
    sendRaw(
      res,
      200,
      envelope(
        batch.map((e) => e.json),
        errors,
        nextKey,
      ),
    );
  }

  /** Resolves true when the channel gets messages or the time is up, false when the request is gone. */
  private waitForMessages(channelId: number, ms: number, res: ServerResponse): Promise<boolean> {
    if (this.closing || res.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let waiting = this.waiters.get(channelId);
      if (!waiting) this.waiters.set(channelId, (waiting = new Set()));
      const set = waiting;
      const done = (result: boolean) => {
        clearTimeout(timer);
        set.delete(wake);
        res.off('close', gone);
        resolve(result);
      };
      const wake = () => done(!res.destroyed && !this.closing);
      const gone = () => done(false);
      const timer = setTimeout(() => done(true), Math.max(0, ms));
      set.add(wake);
      res.once('close', gone);
    });
  }

  private deleteChannelMessages(selectorText: string, data: Item, res: ServerResponse): void {
    checkKeys(data, ['delete_key'], 'deleting channel messages (delete_key)');
    if (!('delete_key' in data)) throw badRequest('delete_key is required: pass the next_key of the last batch you processed, e.g. data={"delete_key":101}');
    const deleteKey = integerParam(data, 'delete_key', 2, Number.MAX_SAFE_INTEGER, 2);
    const { channels, missing } = this.channelsOf(selectorText);
    for (const channel of channels) {
      channel.log.deleteBelow(deleteKey);
      this.ctx.store.expire(channel);
    }
    sendResult(
      res,
      channels.map((c) => c.id),
      missing.map((id) => this.notFound('channel', id)),
    );
  }

  private deviceMessages(selectorText: string, data: Item, res: ServerResponse): void {
    const store = this.ctx.store;
    if ('generalize' in data || 'method' in data)
      throw badRequest('generalize/method aggregation is not supported by the flespi sandbox: request raw messages');
    checkKeys(data, DEVICE_KEYS, 'device messages (from, to, count, reverse, fields, filter)');
    const { found, missing } = this.select(
      'device',
      [...store.devices.values()].map((d) => d.item),
      selectorText,
      COLLECTIONS.devices?.aliases,
    );
    const fields = data.fields;
    if (fields !== undefined && (typeof fields !== 'string' || fields.length > 4096))
      throw badRequest('fields must be a comma-separated string of parameter names (wildcards allowed), at most 4096 characters');
    const project = typeof fields === 'string' && fields.trim() !== '' ? messageProjection(fields) : undefined;
    const query = timeQuery(data);
    if (project) {
      const previous = query.accept;
      query.accept = (e) => (!previous || previous(e)) && project(JSON.parse(e.json) as Item) !== undefined;
    }
    const merged = found.flatMap((item) => (store.devices.get(item.id as number) as SandboxDevice).log.byDeviceTime(query));
    if (found.length > 1) merged.sort((a, b) => (query.reverse ? b.ts - a.ts : a.ts - b.ts));
    const chosen = merged.slice(0, query.count);
    const texts = project ? chosen.map((e) => JSON.stringify(project(JSON.parse(e.json) as Item))) : chosen.map((e) => e.json);
    sendRaw(
      res,
      200,
      envelope(
        texts,
        missing.map((id) => this.notFound('device', id)),
      ),
    );
  }

  private handleControl(method: string, segments: string[], body: string, res: ServerResponse): void {
    const route = `${method} /${segments.join('/')}`;
    const control = this.ctx.control;
    if (route === 'GET /sandbox/info') return sendResult(res, [control.info()]);
    if (route === 'POST /sandbox/faults') {
      const spec = parseJsonBody(body, 'a fault like {"kind":"429","count":2}') as Item;
      if (!isFaultKind(spec.kind))
        throw badRequest(`fault kind ${JSON.stringify(spec.kind)} is unknown: use "429", "500", "503", "hang", "malformed" or "reset"`);
      const count = spec.count ?? 1;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw badRequest('fault count must be a positive integer');
      if (spec.match !== undefined && typeof spec.match !== 'string') throw badRequest('fault match must be a path substring, e.g. "/messages"');
      if (spec.retryAfter !== undefined && (typeof spec.retryAfter !== 'number' || spec.retryAfter < 0))
        throw badRequest('fault retryAfter must be a number of seconds ≥ 0');
      this.ctx.faults.add(spec.kind, count, { match: spec.match as string | undefined, retryAfter: spec.retryAfter as number | undefined });
      return sendResult(res, this.ctx.faults.pending as unknown as Item[]);
    }
    if (route === 'DELETE /sandbox/faults') {
      this.ctx.faults.clear();
      return sendResult(res, []);
    }
    if (method === 'POST' && segments.length === 4 && segments[1] === 'channels' && segments[3] === 'messages') {
      const id = Number(segments[2]);
      if (!Number.isInteger(id)) throw badRequest(`channel id "${segments[2]}" is not a number`);
      const parsed = parseJsonBody(body, 'a JSON array of messages');
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      const stored = control.inject(id, messages);
      return sendResult(
        res,
        stored.map((e) => ({ key: e.key, 'server.timestamp': e.serverTs })),
      );
    }
    if (route === 'POST /sandbox/mqtt/drop-clients') return sendResult(res, [{ dropped: control.dropMqttClients() }]);
    if (route === 'POST /sandbox/simulation') {
      const settings = parseJsonBody(body, 'settings like {"rateHz":5,"running":true}') as Item;
      const rateHz = settings.rateHz;
      const running = settings.running;
      if (rateHz !== undefined && (typeof rateHz !== 'number' || !(rateHz > 0) || rateHz > 100_000))
        throw badRequest('rateHz must be a number of messages per second per device, above 0 and at most 100000');
      if (running !== undefined && typeof running !== 'boolean') throw badRequest('running must be true or false');
      return sendResult(res, [control.setSimulation({ rateHz, running })]);
    }
    throw new HttpError(404, [
      {
        code: 404,
        reason: `${route} is not a sandbox control endpoint: use GET /sandbox/info, POST|DELETE /sandbox/faults, POST /sandbox/channels/{id}/messages, POST /sandbox/mqtt/drop-clients, POST /sandbox/simulation`,
      },
    ]);
  }

  /**
   * Every error answer: `errors[].code` written in the configured style (see RestOptions.errorCodes).
   * A 200 (notFoundStatus 200) carries an empty `result` beside the errors, as flespi's partial answers do.
   */
  private fail(res: ServerResponse, error: unknown): void {
    if (res.headersSent || res.destroyed) return;
    const style = this.options.errorCodes;
    if (error instanceof HttpError) {
      const errors = error.errors.map((e) => ({ ...e, code: errorCode(error.status === 200 ? 404 : error.status, style) }));
      return sendRaw(res, error.status, JSON.stringify(error.status === 200 ? { result: [], errors } : { errors }));
    }
    if (error instanceof SandboxInputError)
      return sendRaw(res, error.status, JSON.stringify({ errors: [{ code: errorCode(error.status, style), reason: error.message }] }));
    sendRaw(
      res,
      500,
      JSON.stringify({ errors: [{ code: errorCode(500, style), reason: `the sandbox failed: ${error instanceof Error ? error.message : String(error)}` }] }),
    );
  }

  /** An unknown id, inside a partial answer or a 404 (code 2 or 404 by RestOptions.errorCodes). */
  private notFound(noun: string, id: number): ErrorItem {
    return { code: errorCode(404, this.options.errorCodes), reason: `${noun} ${id} not found`, id };
  }
}

function applyFault(fault: Fault, req: IncomingMessage, res: ServerResponse, style: RestOptions['errorCodes']): void {
  req.resume();
  switch (fault.kind) {
    case '429': {
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
      return sendRaw(res, 429, JSON.stringify({ errors: [{ code: errorCode(429, style), reason: 'too many requests (sandbox fault injection)' }] }), headers);
    }
    case '500':
    case '503':
      return sendRaw(
        res,
        Number(fault.kind),
        JSON.stringify({
          errors: [
            {
              code: errorCode(Number(fault.kind), style),
              reason: 'server is unable to process request at the moment, try again later (sandbox fault injection)',
            },
          ],
        }),
      );
    case 'malformed':
      return sendRaw(res, 200, '{"result":[{"ident":"3526');
    case 'reset':
      req.socket.destroy();
      return;
    case 'hang':
      return; // never answer; the connection closes when the client gives up or the sandbox stops
  }
}

function sendRaw(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  const body = Buffer.from(text, 'utf8');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...headers });
  res.end(body);
}

function sendResult(res: ServerResponse, result: unknown[], errors: ErrorItem[] = []): void {
  const body: Record<string, unknown> = { result };
  if (errors.length > 0) body.errors = errors;
  sendRaw(res, 200, JSON.stringify(body));
}

/** `{"result":[...]}` from ready JSON texts, without re-serializing the messages. */
function envelope(jsonTexts: string[], errors: ErrorItem[], nextKey?: number): string {
  let text = `{"result":[${jsonTexts.join(',')}]`;
  if (nextKey !== undefined) text += `,"next_key":${nextKey}`;
  if (errors.length > 0) text += `,"errors":${JSON.stringify(errors)}`;
  return `${text}}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new HttpError(413, [{ code: 1, reason: `the request body is over ${MAX_BODY_BYTES} bytes: send fewer messages per request` }]);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonBody(body: string, expected: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw badRequest(`the request body is not valid JSON: send ${expected}`);
  }
}

/**
 * The `data` parameter: URL-encoded JSON, raw JSON (even with `&&` inside), or a JSON body as a fallback.
 */
function readData(url: URL, rawUrl: string, body: string): Item {
  const candidates: string[] = [];
  const start = rawUrl.search(/[?&]data=/);
  if (start >= 0) {
    const rest = rawUrl.slice(start + 6);
    const untilAmp = rest.split('&')[0] as string;
    for (const raw of [untilAmp, rest]) {
      candidates.push(raw);
      try {
        candidates.push(decodeURIComponent(raw.replace(/\+/g, ' ')));
      } catch {
        // not URL-encoded
      }
    }
    candidates.push(url.searchParams.get('data') ?? '');
  } else if (body.trim() !== '') {
    candidates.push(body);
  } else {
    return {};
  }
  for (const text of candidates) {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Item;
      throw badRequest('data must be a JSON object, e.g. data={"curr_key":0,"limit_count":1000}');
    } catch (error) {
      if (error instanceof HttpError) throw error;
    }
  }
  throw badRequest('data is not valid JSON: URL-encode a JSON object, e.g. data=%7B%22curr_key%22%3A0%7D');
}

function checkKeys(data: Item, allowed: readonly string[], what: string, otherStyle?: readonly string[]): void {
  for (const key of Object.keys(data)) {
    if (allowed.includes(key)) continue;
    if (otherStyle?.includes(key)) {
      throw badRequest(
        `"${key}" cannot be combined with ${Object.keys(data)
          .filter((k) => allowed.includes(k))
          .join(', ')}: read the buffer by key (curr_key, limit_count, limit_size, timeout, delete) or by time (from, to, count, reverse, filter), not both`,
      );
    }
    throw badRequest(`unknown parameter "${key}" for ${what}`);
  }
}

function numberParam(data: Item, name: string, min: number, max: number, fallback: number): number {
  const value = data[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw badRequest(`${name} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integerParam(data: Item, name: string, min: number, max: number, fallback: number): number {
  const value = numberParam(data, name, min, max, fallback);
  if (!Number.isInteger(value)) throw badRequest(`${name} must be an integer, got ${value}`);
  return value;
}

function booleanParam(data: Item, name: string, fallback: boolean): boolean {
  const value = data[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw badRequest(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** from/to (0 or missing = unbounded), count, reverse and filter of a time-range read. */
function timeQuery(data: Item) {
  const from = numberParam(data, 'from', 0, Number.MAX_VALUE, 0);
  const to = numberParam(data, 'to', 0, Number.MAX_VALUE, 0) || Infinity;
  if (from > to) throw badRequest(`from (${from}) is after to (${to}): swap them, or use reverse=true to read newest first`);
  const count = integerParam(data, 'count', 1, 10_000_000, 10_000_000);
  const reverse = booleanParam(data, 'reverse', false);
  const filter = data.filter;
  let accept: ((e: StoredMessage) => boolean) | undefined;
  if (filter !== undefined) {
    if (typeof filter !== 'string' || filter.length > 1024)
      throw badRequest('filter must be an expression string of at most 1024 characters, e.g. "position.speed>60&&position.valid==true"');
    try {
      const test = compileFilter(filter);
      accept = (e) => {
        const message = JSON.parse(e.json) as Item;
        return test((name) => message[name]);
      };
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw badRequest(`filter "${filter}" is invalid: ${error.message}`);
      throw error;
    }
  }
  return { from, to, count, reverse, accept };
}
