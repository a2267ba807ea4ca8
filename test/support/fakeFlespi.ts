// A fake flespi REST server over a real HTTP socket, for answers the sandbox never gives: every answer
// is scripted per route (status, headers such as Retry-After, any body or `next_key`), and an answer
// can be delayed (a long-poll), drip-fed a few bytes at a time, generated to any size without holding
// it in memory, or cut off. Every request is recorded with its arrival time and how many body bytes it
// was sent before the client went away, so a test can count polls and see where a client gave up. A
// request no route matches is answered 404 with a flespi envelope and listed in `unmatched`, so a test
// can assert it asked only what it scripted.
//
//   const server = await startFakeFlespi();
//   server.channel(7, 'cars');                                   // the lookups the CLI makes first
//   server.on('GET', '/gw/channels/7/messages', { status: 429, headers: { 'Retry-After': '3000000' } });
//   ... run a client against server.url ...
//   server.requestsTo('GET', '/gw/channels/7/messages').length
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeRequest {
  method: string;
  /** The path without the query string, e.g. `/gw/channels/7/messages`. */
  path: string;
  /** The parsed `data` query parameter (flespi's JSON parameters), or undefined. */
  data: Record<string, unknown> | undefined;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** `Date.now()` when it arrived. */
  at: number;
  /** Body bytes written to the client so far (updated while a drip or a huge body is being sent). */
  bytesSent: number;
  /** True once the client closed the connection before the whole answer was sent. */
  clientGaveUp: boolean;
}

export interface FakeAnswer {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** An object or array is sent as JSON, a string or Buffer as is. */
  body?: unknown;
  /** Wait this long before the status line (a slow server, or a long-poll); a request closed meanwhile is dropped. */
  delayMs?: number;
  /**
   * Send the body `bytes` at a time (default 1), one piece every `everyMs`. With `endless`, keep sending
   * spaces after it (valid JSON whitespace) for as long as the client listens: an answer that never ends.
   */
  drip?: { everyMs: number; bytes?: number; endless?: boolean };
  /**
   * A generated JSON answer of about this many bytes, `{"result":[],"next_key":…,"pad":"xxx…"}`,
   * written in 64 KiB pieces as fast as the client reads, never held in memory whole.
   */
  hugeBytes?: number;
  /** Close the connection without answering. */
  destroy?: boolean;
}

/** A fixed answer, or one computed from the request. */
export type FakeReply = FakeAnswer | ((request: FakeRequest) => FakeAnswer | Promise<FakeAnswer>);

interface Route {
  method: string;
  path: string | RegExp;
  replies: FakeReply[];
  hits: number;
}

const PIECE = 64 * 1024;

export class FakeFlespi {
  /** Every request, in arrival order. */
  readonly requests: FakeRequest[] = [];
  /** Requests that no route matched (answered 404). */
  readonly unmatched: FakeRequest[] = [];
  private readonly routes: Route[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly server: Server;
  private port = 0;
  private host = '127.0.0.1';

  constructor() {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = url.searchParams.get('data');
      let data: Record<string, unknown> | undefined;
      try {
        data = raw === null ? undefined : (JSON.parse(raw) as Record<string, unknown>);
      } catch {
        data = undefined;
      }
      const request: FakeRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        data,
        query: url.searchParams,
        headers: req.headers,
        at: Date.now(),
        bytesSent: 0,
        clientGaveUp: false,
      };
      this.requests.push(request);
      res.once('close', () => {
        if (!res.writableFinished) request.clientGaveUp = true;
      });
      req.resume();
      void this.answer(request, res).catch(() => res.destroy());
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** The base URL to give a client (the host it listens on, `127.0.0.1` by default). */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  get listeningPort(): number {
    return this.port;
  }

  /**
   * Scripts the answers to `method` + `path` (exact, or a RegExp on the path): the first matching
   * request gets `replies[0]`, the next `replies[1]`, ...; the last reply answers every later one.
   * Routes added later take precedence. A request no route matches gets flespi's 404 envelope.
   */
  on(method: string, path: string | RegExp, ...replies: FakeReply[]): this {
    if (replies.length === 0) throw new Error('FakeFlespi.on: give at least one reply');
    this.routes.unshift({ method: method.toUpperCase(), path, replies, hits: 0 });
    return this;
  }

  /**
   * Answers the lookups a client makes before reading a channel: `GET /gw/channels/{id}` and
   * `GET /gw/channels/all` (with `fields`), and `GET /auth/info`.
   */
  channel(id: number, name = `channel ${id}`, protocol = 'test'): this {
    const item = { id, name, protocol_name: protocol };
    this.on('GET', '/auth/info', { body: { result: [{ id: 1, cid: 1 }] } });
    this.on('GET', '/gw/channels/all', { body: { result: [item] } });
    return this.on('GET', `/gw/channels/${id}`, { body: { result: [item] } });
  }

  /** The requests to `method` + `path` (same matching as `on`). */
  requestsTo(method: string, path: string | RegExp): FakeRequest[] {
    return this.requests.filter((r) => matches(r, method.toUpperCase(), path));
  }

  /** Listens on `host` (default 127.0.0.1; give `0.0.0.0` to be reachable on every interface). */
  async listen(host = '127.0.0.1'): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.host = host === '0.0.0.0' ? '127.0.0.1' : host;
    return this;
  }

  /** Stops listening and drops every connection (drips and long-polls included). */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private wait(ms: number, res: ServerResponse): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.timers.add(timer);
      res.once('close', done);
      function done() {
        clearTimeout(timer);
        res.off('close', done);
        resolve();
      }
    });
  }

  private async answer(request: FakeRequest, res: ServerResponse): Promise<void> {
    const route = this.routes.find((r) => matches(request, r.method, r.path));
    let answer: FakeAnswer;
    if (!route) {
      this.unmatched.push(request);
      answer = { status: 404, body: { result: [], errors: [{ code: 404, reason: `the fake flespi has no route for ${request.method} ${request.path}` }] } };
    } else {
      const reply = route.replies[Math.min(route.hits, route.replies.length - 1)]!;
      route.hits += 1;
      try {
        answer = typeof reply === 'function' ? await reply(request) : reply;
      } catch (error) {
        answer = { status: 500, body: { errors: [{ reason: `fake flespi reply failed: ${error instanceof Error ? error.message : String(error)}` }] } };
      }
    }
    if (answer.delayMs) await this.wait(answer.delayMs, res);
    if (res.destroyed) return;
    if (answer.destroy) {
      res.destroy();
      return;
    }
    const body =
      answer.body === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(answer.body)
          ? answer.body
          : Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    const headers = { 'content-type': 'application/json', ...answer.headers };
    if (answer.hugeBytes !== undefined) return this.sendHuge(request, res, answer.status ?? 200, headers, answer.hugeBytes);
    if (answer.drip) return this.drip(request, res, answer.status ?? 200, headers, body, answer.drip);
    res.writeHead(answer.status ?? 200, { ...headers, 'content-length': String(body.length) });
    res.end(body);
    request.bytesSent = body.length;
  }

  private async drip(
    request: FakeRequest,
    res: ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: Buffer,
    drip: NonNullable<FakeAnswer['drip']>,
  ): Promise<void> {
    res.writeHead(status, headers); // chunked: no length, so the client cannot tell how much is left
    res.flushHeaders();
    const step = Math.max(1, drip.bytes ?? 1);
    for (let offset = 0; !res.destroyed && (offset < body.length || drip.endless); offset += step) {
      const piece = offset < body.length ? body.subarray(offset, offset + step) : Buffer.alloc(step, 0x20);
      res.write(piece);
      request.bytesSent += piece.length;
      await this.wait(drip.everyMs, res);
    }
    if (!res.destroyed) res.end();
  }

  private async sendHuge(request: FakeRequest, res: ServerResponse, status: number, headers: Record<string, string>, total: number): Promise<void> {
    const head = Buffer.from('{"result":[],"next_key":1,"pad":"');
    const tail = Buffer.from('"}');
    const filler = Buffer.alloc(PIECE, 0x78);
    res.writeHead(status, { ...headers, 'content-length': String(Math.max(total, head.length + tail.length)) });
    const write = async (piece: Buffer) => {
      if (res.destroyed) return;
      request.bytesSent += piece.length;
      if (!res.write(piece))
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.once('drain', done);
          res.once('close', done);
        });
    };
    await write(head);
    let left = total - head.length - tail.length;
    while (left > 0 && !res.destroyed) {
      const piece = left >= PIECE ? filler : filler.subarray(0, left);
      await write(piece);
      left -= piece.length;
    }
    if (!res.destroyed) res.end(tail);
  }
}

function matches(request: FakeRequest, method: string, path: string | RegExp): boolean {
  return request.method === method && (typeof path === 'string' ? request.path === path : path.test(request.path));
}

/** Starts a fake flespi on a free port of `host` (default 127.0.0.1); `close()` it when done. */
export function startFakeFlespi(host?: string): Promise<FakeFlespi> {
  return new FakeFlespi().listen(host);
}

/** An answer to a style-A poll: these messages and `next_key`. */
export function pollAnswer(messages: readonly Record<string, unknown>[], nextKey: number, extra: FakeAnswer = {}): FakeAnswer {
  return { ...extra, body: { result: messages, next_key: nextKey } };
}

/**
 * Answers a style-A poll from a channel buffer holding `messages` with keys 1..n: the messages with
 * key ≥ `curr_key` (at most `limit`), `next_key` = the last key + 1. An empty answer comes after
 * `idleMs` and keeps `next_key` at `curr_key`, as flespi does after a long-poll with nothing new.
 */
export function bufferAnswer(messages: readonly Record<string, unknown>[], request: FakeRequest, { limit = Infinity, idleMs = 50 } = {}): FakeAnswer {
  const currKey = typeof request.data?.curr_key === 'number' ? request.data.curr_key : 0;
  const first = Math.max(1, currKey);
  const result = messages.slice(first - 1, first - 1 + limit);
  return { body: { result, next_key: first + result.length }, delayMs: result.length === 0 ? idleMs : 0 };
}
