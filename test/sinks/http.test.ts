import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { unexpectedReject } from '../support/logger';
import { settingsError } from '../support/specs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { classifyFailure } from '../../src/core/errors';
import type { HandlerContext } from '../../src/core/handler';
import { HttpHandler, httpSpec } from '../../src/core/handlers/http';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import type { Options } from '../../src/core/options';
import { freePort } from '../support/mosquitto';
import { depthOf, nested, recordingContext } from '../support/rejects';

const env = { resolvePath: (p: string) => resolve(p) };

function ctx(signal = new AbortController().signal): HandlerContext {
  return { signal, attempt: 1, log: silentLogger, reject: unexpectedReject };
}

function batch(from: number, count: number): FlespiMessage[] {
  return Array.from({ length: count }, (_, i) => ({ ident: `dev-${from + i}`, 'channel.id': 7, 'server.timestamp': 1700000000.25 + i, seq: from + i }));
}

function create(options: Options): HttpHandler {
  const handler = httpSpec.create(options, env, 'test');
  assert.ok(handler instanceof HttpHandler);
  return handler;
}

interface Received {
  method: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  socket: Socket;
}

/** A real HTTP server; `answer` decides each response (default 200). */
async function startServer(answer: (request: Received, response: ServerResponse) => void = (_r, res) => res.end('ok')) {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const entry = {
        method: request.method ?? '',
        headers: request.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        socket: request.socket,
      };
      received.push(entry);
      answer(entry, response);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/flespi?token=secret-in-query`,
    received,
    close: () =>
      new Promise<void>((done) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => done());
      }),
  };
}

describe('HTTP sink against a real local server', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let status = 200;
  before(async () => {
    server = await startServer((_request, response) => {
      response.statusCode = status;
      response.end(status === 200 ? 'ok' : `{"errors":[{"reason":"backend busy, status ${status}"}]}`);
    });
  });
  after(() => server.close());

  test('POSTs each batch as a JSON array with the configured headers over one kept-alive connection', async () => {
    process.env.FLESPI_TEST_HTTP_TOKEN = 'Bearer from-env';
    const handler = create({ url: server.url, headers: { 'X-Source': 'flespi-receiver' }, headersEnv: { Authorization: 'FLESPI_TEST_HTTP_TOKEN' } });
    delete process.env.FLESPI_TEST_HTTP_TOKEN;
    try {
      await handler.start();
      const batches = [batch(0, 3), batch(3, 1), batch(4, 50)];
      for (const b of batches) await handler.handle(b, ctx());
      assert.equal(server.received.length, 3);
      assert.deepEqual(
        server.received.map((r) => r.body),
        batches,
      );
      for (const r of server.received) {
        assert.equal(r.method, 'POST');
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers['x-source'], 'flespi-receiver');
        assert.equal(r.headers.authorization, 'Bearer from-env');
      }
      assert.equal(new Set(server.received.map((r) => r.socket)).size, 1, 'the connection is reused');
      assert.match(handler.health().detail ?? '', /^3 batches delivered; last: accepted$/);
    } finally {
      await handler.stop();
      server.received.length = 0;
    }
  });

  test('503 fails the batch with the status and an excerpt of the answer; after 200 the retry succeeds', async () => {
    const handler = create({ url: server.url });
    try {
      await handler.start();
      status = 503;
      const error = await handler.handle(batch(0, 2), ctx()).then(
        () => assert.fail('a 503 must not acknowledge the batch'),
        (e: Error) => e,
      );
      assert.equal(
        error.message,
        `http://127.0.0.1:${new URL(server.url).port}/flespi answered 503 Service Unavailable: {"errors":[{"reason":"backend busy, status 503"}]}`,
      );
      assert.doesNotMatch(error.message, /secret-in-query/, 'the query string (which may hold a token) stays out of errors');
      assert.equal(classifyFailure(error), 'transient', 'a 503 is the server, not the messages: retried, never dead-lettered');
      status = 200;
      await handler.handle(batch(0, 2), ctx());
      assert.equal(server.received.length, 2);
      assert.deepEqual(server.received[1]!.body, batch(0, 2));
    } finally {
      status = 200;
      await handler.stop();
      server.received.length = 0;
    }
  });

  test('401 hints at the credentials; a redirect is not followed and names the new address', async () => {
    const other = await startServer((request, response) => {
      const seq = (request.body as FlespiMessage[])[0]!.seq;
      if (seq === 0) response.writeHead(401, 'Unauthorized').end('bad token');
      else response.writeHead(301, { location: 'https://example.com/new' }).end();
    });
    const handler = create({ url: other.url });
    try {
      await handler.start();
      await assert.rejects(handler.handle(batch(0, 1), ctx()), /answered 401 Unauthorized: bad token \(check the credentials in headers\/headersEnv\)$/);
      await assert.rejects(
        handler.handle(batch(1, 1), ctx()),
        /answered 301 Moved Permanently \(redirects are not followed: set url to https:\/\/example\.com\/new\)$/,
      );
    } finally {
      await handler.stop();
      await other.close();
    }
  });

  test('a server that does not answer in time fails the batch', async () => {
    const silent = await startServer(() => {});
    const handler = create({ url: silent.url, timeoutMs: 200 });
    try {
      await handler.start();
      await assert.rejects(
        handler.handle(batch(0, 1), ctx()),
        /^TransientError: no answer from http:\/\/127\.0\.0\.1:\d+\/flespi within 200 ms \(timeoutMs\)$/,
      );
      assert.equal(silent.received.length, 1, 'the request reached the server');
    } finally {
      await handler.stop();
      await silent.close();
    }
  });

  test('a cancelled batch rejects at once', async () => {
    const silent = await startServer(() => {});
    const handler = create({ url: silent.url, timeoutMs: 60_000 });
    try {
      await handler.start();
      const controller = new AbortController();
      const delivery = handler.handle(batch(0, 1), ctx(controller.signal));
      while (silent.received.length === 0) await new Promise((r) => setTimeout(r, 5));
      controller.abort();
      await assert.rejects(delivery, /^TransientError: request to http:\/\/127\.0\.0\.1:\d+\/flespi cancelled$/);
    } finally {
      await handler.stop();
      await silent.close();
    }
  });

  test('an unreachable server is named with host and port', async () => {
    const port = await freePort();
    const handler = create({ url: `http://127.0.0.1:${port}/x` });
    try {
      await handler.start();
      await assert.rejects(
        handler.handle(batch(0, 1), ctx()),
        new RegExp(`^TransientError: cannot reach 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): check url`),
      );
    } finally {
      await handler.stop();
    }
  });

  test('a kept-alive connection the server closed while idle is replaced without failing the batch', async () => {
    const closing = await startServer((_request, response) => {
      response.end('ok');
    });
    const handler = create({ url: closing.url });
    try {
      await handler.start();
      await handler.handle(batch(0, 1), ctx());
      const first = closing.received[0]!.socket;
      first.destroy(); // the server drops the idle connection
      await new Promise((r) => setImmediate(r));
      await handler.handle(batch(1, 1), ctx());
      assert.equal(closing.received.length, 2);
      assert.notEqual(closing.received[1]!.socket, first);
    } finally {
      await handler.stop();
      await closing.close();
    }
  });
});

describe('HTTP sink settings', () => {
  const configError = (options: Options) => settingsError(httpSpec, options, env, 'hook');

  test('bad urls, headers and environment variables are named', () => {
    assert.match(configError({ url: 'ftp://h/x' }), /^handler "hook" \(http\): "url" must start with http:\/\/ or https:\/\//);
    assert.match(configError({ url: 'not a url' }), /"url" must be a URL like/);
    assert.match(configError({ url: 'https://u:p@h/x' }), /must not contain credentials/);
    assert.match(
      configError({ url: 'https://h/x', headersEnv: { Authorization: 'FLESPI_TEST_SURELY_UNSET' } }),
      /takes Authorization from the environment variable FLESPI_TEST_SURELY_UNSET, which is not set/,
    );
    assert.match(configError({ url: 'https://h/x', headers: { 'Bad Header': 'x' } }), /invalid HTTP header "Bad Header"/);
    assert.match(configError({ url: 'https://h/x', headers: { 'Content-Length': '1' } }), /must not set Content-Length/);
    assert.match(configError({ url: 'https://h/x', headers: { a: 1 } }), /"headers" must be an object of string values/);
    assert.match(configError({ url: 'https://h/x', method: 'GET' }), /"method" must be one of "POST", "PUT"/);
    assert.match(configError({ url: 'https://h/x', timeout: 5 }), /unknown setting "timeout"/);
  });
});

describe('HTTP sink: what a refusal means, and messages that cannot be JSON', () => {
  test('4xx refusing the batch is UndeliverableError; 408, 429, 5xx and answers about the settings (3xx, 401, 403, 404) are TransientError', async () => {
    const server = await startServer((request, response) => {
      const status = (request.body as FlespiMessage[])[0]!.seq as number;
      response.writeHead(status, status < 400 ? { location: 'https://example.com/moved' } : {}).end(status === 413 ? 'too big' : 'no');
    });
    const handler = create({ url: server.url });
    try {
      await handler.start();
      const kinds: Record<number, string> = {};
      for (const status of [400, 409, 413, 422, 408, 429, 500, 502, 503, 301, 401, 403, 404]) {
        const error = await handler.handle([{ ident: 'x', seq: status }], ctx()).then(
          () => assert.fail(`${status} acknowledged the batch`),
          (e: Error) => e,
        );
        kinds[status] = `${classifyFailure(error)} ${error.name}`;
        if (status === 413) assert.match(error.message, /answered 413 Payload Too Large: the batch of \d+ bytes is too large for this server$/);
      }
      const undeliverable = 'undeliverable UndeliverableError';
      const transient = 'transient TransientError';
      assert.deepEqual(kinds, {
        400: undeliverable,
        409: undeliverable,
        413: undeliverable,
        422: undeliverable,
        408: transient,
        429: transient,
        500: transient,
        502: transient,
        503: transient,
        301: transient,
        401: transient,
        403: transient,
        404: transient,
      });
    } finally {
      await handler.stop();
      await server.close();
    }
  });

  test('a message nested 6,000 deep is posted intact with the batch; one with a BigInt or a cycle is rejected with the reason and the rest is posted', async () => {
    const server = await startServer();
    const handler = create({ url: server.url });
    const cyclic: FlespiMessage = { ident: 'cyclic', seq: 3 };
    cyclic.self = cyclic;
    const messages: FlespiMessage[] = [
      { ident: 'a', seq: 0 },
      { ident: 'deep', seq: 1, deep: nested(6000) },
      { ident: 'big', seq: 2, big: (2n ** 70n) as unknown as number },
      cyclic,
      { ident: 'b', seq: 4 },
    ];
    try {
      await handler.start();
      const context = recordingContext();
      await handler.handle(messages, context);
      assert.deepEqual(context.reasons(), [
        '2: the message cannot be written as JSON: it holds a BigInt, which JSON cannot represent',
        '3: the message cannot be written as JSON: it refers to itself (a circular structure)',
      ]);
      assert.ok([...context.rejected.values()].every((r) => classifyFailure(r) === 'undeliverable'));
      assert.equal(server.received.length, 1, 'one request for the batch');
      const posted = server.received[0]!.body as FlespiMessage[];
      assert.deepEqual(
        posted.map((m) => m.seq),
        [0, 1, 4],
      );
      assert.equal(depthOf(posted[1]!.deep), 6000, 'the deep message arrives whole');

      // A batch of only such messages sends nothing and succeeds.
      const onlyBad = recordingContext();
      await handler.handle([cyclic], onlyBad);
      assert.deepEqual([...onlyBad.rejected.keys()], [0]);
      assert.equal(server.received.length, 1);
    } finally {
      await handler.stop();
      await server.close();
    }
  });
});
