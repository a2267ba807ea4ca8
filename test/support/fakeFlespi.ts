// A scriptable stand-in for the flespi REST API over a real HTTP socket, for answers the sandbox never
// gives (a next_key going backwards, `errors` beside `result` in a 200, ...). Each test scripts the
// answers per route; every request is recorded, and one that no route matches is answered 404 with a
// flespi envelope and listed in `unmatched`, so a test can assert it asked only what it scripted.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeRequest {
  method: string;
  /** The path without the query string, e.g. `/gw/channels/1/messages`. */
  path: string;
  /** The parsed `data` query parameter (flespi's JSON parameters), or undefined. */
  data: Record<string, unknown> | undefined;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export interface FakeAnswer {
  /** Default 200. */
  status?: number;
  /** An object or array is sent as JSON; a string as is. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer after this many ms (a long-poll); a request closed meanwhile is dropped. */
  delayMs?: number;
}

/** A fixed answer, or one computed from the request (which may wait, e.g. for a test's signal). */
export type FakeReply = FakeAnswer | ((request: FakeRequest) => FakeAnswer | Promise<FakeAnswer>);

interface Route {
  method: string;
  path: string | RegExp;
  replies: FakeReply[];
  /** Requests this route answered so far. */
  hits: number;
}

export class FakeFlespi {
  /** Every request, in arrival order. */
  readonly requests: FakeRequest[] = [];
  /** Requests that no route matched (answered 404). */
  readonly unmatched: FakeRequest[] = [];
  private readonly routes: Route[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;

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
      const request: FakeRequest = { method: req.method ?? 'GET', path: url.pathname, data, query: url.searchParams, headers: req.headers };
      this.requests.push(request);
      void this.answer(request, res);
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** The base URL to give a FlespiClient. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Scripts the answers to `method` + `path` (exact, or a RegExp on the path): the first matching
   * request gets `replies[0]`, the next `replies[1]`, ...; the last reply answers every later one.
   * Routes added later take precedence, so a test can override a general route for a while.
   */
  on(method: string, path: string | RegExp, ...replies: FakeReply[]): this {
    if (replies.length === 0) throw new Error('FakeFlespi.on: give at least one reply');
    this.routes.unshift({ method: method.toUpperCase(), path, replies, hits: 0 });
    return this;
  }

  /** The requests to `method` + `path` (same matching as `on`). */
  requestsTo(method: string, path: string | RegExp): FakeRequest[] {
    return this.requests.filter((r) => matches(r, method.toUpperCase(), path));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening and drops every open connection (pending long-polls included). */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(request: FakeRequest, res: ServerResponse): Promise<void> {
    const route = this.routes.find((r) => matches(request, r.method, r.path));
    let answer: FakeAnswer;
    if (!route) {
      this.unmatched.push(request);
      answer = { status: 404, body: { result: [], errors: [{ reason: `the fake flespi has no route for ${request.method} ${request.path}` }] } };
    } else {
      const reply = route.replies[Math.min(route.hits, route.replies.length - 1)]!;
      route.hits += 1;
      try {
        answer = typeof reply === 'function' ? await reply(request) : reply;
      } catch (error) {
        answer = { status: 500, body: { errors: [{ reason: `fake flespi reply failed: ${error instanceof Error ? error.message : String(error)}` }] } };
      }
    }
    if (answer.delayMs) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, answer.delayMs);
        res.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (res.destroyed || res.writableEnded) return;
    const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
    res.end(text);
  }
}

function matches(request: FakeRequest, method: string, path: string | RegExp): boolean {
  return request.method === method && (typeof path === 'string' ? request.path === path : path.test(request.path));
}

/** Starts a fake flespi on a free port; call `close()` when done (e.g. in `t.after`). */
export function startFakeFlespi(): Promise<FakeFlespi> {
  return new FakeFlespi().listen();
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
