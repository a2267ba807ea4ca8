// The HTTP sink's texts and edges, each through handle(), probe(), health() or the spec against real
// servers: what a user reads in an error, the status boundaries, TLS refusals, broken answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { readFile, mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TransientError, UndeliverableError } from '../../src/core/errors';
import type { HandlerContext } from '../../src/core/handler';
import { HttpHandler, httpSpec } from '../../src/core/handlers/http';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import type { Options } from '../../src/core/options';
import { TestCa } from '../support/certs';
import { settingsError } from '../support/specs';
import { unexpectedReject } from '../support/logger';
import { failure } from '../support/await';

const env = { resolvePath: (p: string) => resolve(p) };
const one: FlespiMessage[] = [{ ident: 'a', 'server.timestamp': 1700000000 }];

function ctx(signal = new AbortController().signal): HandlerContext {
  return { signal, attempt: 1, log: silentLogger, reject: unexpectedReject };
}

function create(options: Options): HttpHandler {
  const handler = httpSpec.create(options, env, 'hook');
  assert.ok(handler instanceof HttpHandler);
  return handler;
}

type Answer = (request: IncomingMessage, body: string, response: ServerResponse) => void;

/** A real HTTP server answering each request with `answer` (read at request time, so tests can swap it). */
async function startServer(first: Answer) {
  const state = { answer: first, requests: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      state.requests++;
      state.answer(request, body, response);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const port = (server.address() as { port: number }).port;
  return {
    state,
    sockets,
    port,
    url: `http://127.0.0.1:${port}/in`,
    close: () =>
      new Promise<void>((done) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => done());
      }),
  };
}

describe('HTTP sink: what each answer says', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let handler: HttpHandler;
  before(async () => {
    server = await startServer((_request, _body, response) => response.end());
    handler = create({ url: server.url });
    await handler.start();
  });
  after(async () => {
    await handler.stop();
    await server.close();
  });
  const answer = (status: number, body = '', headers: Record<string, string> = {}, reason?: string) => {
    server.state.answer = (_request, _body, response) => {
      if (reason === undefined) response.writeHead(status, headers);
      else response.writeHead(status, reason, headers);
      response.end(body);
    };
  };
  const at = () => `http://127.0.0.1:${server.port}/in`;

  test('health before anything was sent, after a refusal and after a delivery', async () => {
    const fresh = create({ url: server.url });
    assert.deepEqual(fresh.health(), { detail: '0 batches delivered; last: nothing sent yet' });
    answer(503, 'busy');
    await handler.start();
    const error = await failure(handler.handle(one, ctx()));
    assert.equal(error.message, `${at()} answered 503 Service Unavailable: busy`);
    assert.equal(handler.health().detail, `0 batches delivered; last: ${at()} answered 503 Service Unavailable: busy`);
    answer(200);
    await handler.handle(one, ctx());
    await handler.handle(one, ctx());
    assert.equal(handler.health().detail, '2 batches delivered; last: accepted');
  });

  test('2xx up to 299 accepts; 300 and 399 are redirects, with or without a location; 400 is not', async () => {
    for (const status of [200, 201, 204, 299]) {
      answer(status);
      await handler.handle(one, ctx());
    }
    answer(300);
    let error = await failure(handler.handle(one, ctx()));
    assert.ok(error instanceof TransientError);
    assert.equal(error.message, `${at()} answered 300 Multiple Choices (redirects are not followed: set url to the new address)`);
    answer(399, 'ignored', { location: 'https://example.com/new' }, 'Odd');
    error = await failure(handler.handle(one, ctx()));
    assert.equal(error.message, `${at()} answered 399 Odd (redirects are not followed: set url to https://example.com/new)`);
    answer(400, 'bad', { location: 'https://example.com/new' });
    error = await failure(handler.handle(one, ctx()));
    assert.ok(error instanceof UndeliverableError);
    assert.equal(error.message, `${at()} answered 400 Bad Request: bad`);
  });

  test('401 and 403 name the credentials after the excerpt; 413 the size of the batch; an empty reason is left out', async () => {
    answer(401, '{"error": "no"}');
    assert.equal(
      (await failure(handler.handle(one, ctx()))).message,
      `${at()} answered 401 Unauthorized: {"error": "no"} (check the credentials in headers/headersEnv)`,
    );
    answer(403);
    assert.equal((await failure(handler.handle(one, ctx()))).message, `${at()} answered 403 Forbidden (check the credentials in headers/headersEnv)`);
    answer(413, 'too big');
    const bytes = Buffer.byteLength(JSON.stringify(one));
    assert.equal(
      (await failure(handler.handle(one, ctx()))).message,
      `${at()} answered 413 Payload Too Large: the batch of ${bytes} bytes is too large for this server`,
    );
    answer(502, 'down', {}, '');
    assert.equal((await failure(handler.handle(one, ctx()))).message, `${at()} answered 502: down`);
  });

  test('the excerpt: whitespace collapsed and trimmed, cut after 200 characters with an ellipsis', async () => {
    answer(500, '\n  line one\n\n\tline   two  \n');
    assert.equal((await failure(handler.handle(one, ctx()))).message, `${at()} answered 500 Internal Server Error: line one line two`);
    const exactly = 'x'.repeat(200);
    answer(500, exactly);
    assert.equal((await failure(handler.handle(one, ctx()))).message, `${at()} answered 500 Internal Server Error: ${exactly}`);
    answer(500, `${'y'.repeat(199)}zz${'w'.repeat(5000)}`);
    assert.equal((await failure(handler.handle(one, ctx()))).message, `${at()} answered 500 Internal Server Error: ${'y'.repeat(199)}z…`);
    answer(500, '   \n ');
    assert.equal((await failure(handler.handle(one, ctx()))).message, `${at()} answered 500 Internal Server Error`);
  });

  test('probe posts an empty batch and names the answer; a refusal throws the error a batch would get', async () => {
    let seen = '';
    server.state.answer = (request, body, response) => {
      seen = `${request.method} ${request.url} ${body}`;
      response.writeHead(202).end();
    };
    assert.equal(await handler.probe(new AbortController().signal), `${at()} answered 202 Accepted to POST [] (an empty batch, no messages)`);
    assert.equal(seen, 'POST /in []');
    answer(200, '', {}, '');
    assert.equal(await handler.probe(new AbortController().signal), `${at()} answered 200 to POST [] (an empty batch, no messages)`);
    answer(404, 'no such hook');
    assert.equal((await failure(handler.probe(new AbortController().signal))).message, `${at()} answered 404 Not Found: no such hook`);
  });

  test('an answer that breaks off halfway fails the batch, naming it', async () => {
    server.state.answer = (_request, _body, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('partial', () => response.socket?.destroy());
    };
    const error = await failure(handler.handle(one, ctx()));
    assert.ok(error instanceof TransientError);
    assert.equal(error.message, `answer from ${at()} broke off: aborted`);
  });

  test('a batch on a signal that is already aborted is cancelled without a request', async () => {
    answer(200);
    const before = server.state.requests;
    const aborted = new AbortController();
    aborted.abort();
    const error = await failure(handler.handle(one, ctx(aborted.signal)));
    assert.equal(error.message, `request to ${at()} cancelled`);
    assert.equal(server.state.requests, before);
  });

  test('a long-lived signal keeps no listener from batches that ended, whichever way', async () => {
    const signal = new AbortController().signal;
    answer(200);
    await handler.handle(one, ctx(signal));
    answer(500);
    await failure(handler.handle(one, ctx(signal)));
    // A kept-alive connection the server closed: the stale-connection path gives up its listener too.
    answer(200);
    for (const socket of server.sockets) socket.destroy();
    await handler.handle(one, ctx(signal));
    assert.equal(getEventListeners(signal, 'abort').length, 0);
  });
});

describe('HTTP sink: connections that fail', () => {
  test('a server that drops each request on a fresh connection: closed before answering, not retried as stale', async () => {
    const server = await startServer((request) => request.socket.destroy());
    const handler = create({ url: server.url });
    try {
      await handler.start();
      const error = await failure(handler.handle(one, ctx()));
      assert.ok(error instanceof TransientError);
      assert.equal(error.message, `127.0.0.1:${server.port} closed the connection before answering (ECONNRESET)`);
      assert.equal(server.state.requests, 1);
    } finally {
      await handler.stop();
      await server.close();
    }
  });

  test('an answer that is not HTTP: named with the parser code on a fresh connection, and not retried as stale on a kept-alive one', async () => {
    let garbage = false;
    const server = await startServer((_request, _body, response) => {
      if (garbage) response.socket?.end('HELLO THERE\r\n\r\n');
      else response.end();
    });
    const handler = create({ url: server.url });
    try {
      await handler.start();
      await handler.handle(one, ctx()); // leaves a kept-alive connection
      garbage = true;
      const error = await failure(handler.handle(one, ctx()));
      assert.ok(error instanceof TransientError);
      assert.match(error.message, new RegExp(`^request to http://127\\.0\\.0\\.1:${server.port}/in failed \\(HPE_INVALID_CONSTANT\\): Parse Error`));
      assert.equal(server.state.requests, 2, 'the kept-alive connection failed for another reason than a reset: not sent again');
    } finally {
      await handler.stop();
      await server.close();
    }
  });

  test('a host name that does not resolve is named, with the code from the resolver', async () => {
    // .invalid never resolves (RFC 6761); without a resolver at all the code is EAI_AGAIN.
    const handler = create({ url: 'http://nothing-here.invalid/in' });
    await handler.start();
    try {
      const error = await failure(handler.handle(one, ctx()));
      assert.match(
        error.message,
        /^cannot reach nothing-here\.invalid:80 \((ENOTFOUND|EAI_AGAIN)\): check url, and that the server is running and reachable from here$/,
      );
    } finally {
      await handler.stop();
    }
  });

  test('a timed-out batch stays reported as timed out; the request it gave up on changes nothing afterwards', async () => {
    const server = await startServer(() => {
      // never answers
    });
    const handler = create({ url: server.url, timeoutMs: 100 });
    try {
      await handler.start();
      const error = await failure(handler.handle(one, ctx()));
      const expected = `no answer from http://127.0.0.1:${server.port}/in within 100 ms (timeoutMs)`;
      assert.equal(error.message, expected);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(handler.health().detail, `0 batches delivered; last: ${expected}`);
    } finally {
      await handler.stop();
      await server.close();
    }
  });

  test('a URL without a port is named with the default port of its scheme', async () => {
    // Nothing listens on 80 or 443 on the loopback address of a test machine.
    for (const [url, address] of [
      ['http://127.0.0.1/in', '127.0.0.1:80'],
      ['https://127.0.0.1/in', '127.0.0.1:443'],
    ] as const) {
      const handler = create({ url });
      await handler.start();
      try {
        const error = await failure(handler.handle(one, ctx()));
        assert.equal(error.message, `cannot reach ${address} (ECONNREFUSED): check url, and that the server is running and reachable from here`);
      } finally {
        await handler.stop();
      }
    }
  });

  test('https: a certificate this computer does not trust is named, with the TLS code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'http-sink-tls-'));
    const caDir = join(dir, 'ca');
    await mkdir(caDir);
    const ca = await TestCa.create(caDir, 'Untrusted Test CA');
    const cert = await ca.issue('server', { usage: 'server', altNames: ['IP:127.0.0.1'] });
    let requests = 0;
    const server = createTlsServer({ cert: await readFile(cert.cert), key: await readFile(cert.key) }, (_request, response) => {
      requests++;
      response.end();
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const port = (server.address() as { port: number }).port;
    const handler = create({ url: `https://127.0.0.1:${port}/in` });
    try {
      await handler.start();
      const error = await failure(handler.handle(one, ctx()));
      assert.ok(error instanceof TransientError);
      assert.equal(error.message, `the certificate of 127.0.0.1:${port} is not trusted by this computer (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`);
      await assert.rejects(handler.probe(new AbortController().signal), { message: error.message });
      assert.equal(requests, 0);
    } finally {
      await handler.stop();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('before start and after stop, batches and probes are refused; stop closes the kept-alive connections', async () => {
    const server = await startServer((_request, _body, response) => response.end());
    const handler = create({ url: server.url });
    try {
      assert.equal((await failure(handler.handle(one, ctx()))).message, 'hook: not started');
      assert.equal((await failure(handler.probe(new AbortController().signal))).message, 'hook: not started');
      await handler.start();
      await handler.handle(one, ctx());
      assert.equal(server.sockets.size, 1);
      await handler.stop();
      const error = await failure(handler.handle(one, ctx()));
      assert.ok(error instanceof TransientError);
      assert.equal(error.message, 'hook: not started');
      const deadline = Date.now() + 5000;
      while (server.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(server.sockets.size, 0);
    } finally {
      await server.close();
    }
  });
});

describe('HTTP sink settings: the whole message', () => {
  const configError = (options: Options) => settingsError(httpSpec, options, env, 'hook');

  test('the spec is titled for the picker; type and name are accepted beside the settings', () => {
    assert.equal(httpSpec.title, 'HTTP endpoint: POST each batch as a JSON array (like a flespi HTTP stream)');
    const handler = httpSpec.create({ type: 'http', name: 'named', url: 'https://h/x' }, env, 'named');
    assert.equal(handler.name, 'named');
  });

  test('url errors show an example and where credentials go', () => {
    assert.match(configError({ url: 'not a url' }), /like https:\/\/example\.com\/flespi/);
    assert.match(configError({ url: 'https://u:p@h/x' }), /send them in "headers" \(or "headersEnv"\), e\.g\. Authorization/);
  });

  test('headers set per request, twice, or invalid from the environment are refused with the setting named', () => {
    assert.equal(configError({ url: 'https://h/x', headers: { Host: 'h' } }), 'handler "hook" (http): "headers" must not set Host: it is set for each request');
    assert.equal(
      configError({ url: 'https://h/x', headers: { 'Transfer-Encoding': 'chunked' } }),
      'handler "hook" (http): "headers" must not set Transfer-Encoding: it is set for each request',
    );
    process.env.FLESPI_HTTP_EDGES_TOKEN = 'Bearer t';
    process.env.FLESPI_HTTP_EDGES_BAD = 'two\nlines';
    try {
      assert.equal(
        configError({ url: 'https://h/x', headers: { Authorization: 'a' }, headersEnv: { authorization: 'FLESPI_HTTP_EDGES_TOKEN' } }),
        'handler "hook" (http): header authorization is set twice (in "headers" and "headersEnv")',
      );
      assert.equal(
        configError({ url: 'https://h/x', headersEnv: { 'content-length': 'FLESPI_HTTP_EDGES_TOKEN' } }),
        'handler "hook" (http): "headersEnv" must not set content-length: it is set for each request',
      );
      assert.equal(
        configError({ url: 'https://h/x', headersEnv: { 'X-Key': 'FLESPI_HTTP_EDGES_BAD' } }),
        'handler "hook" (http): "headersEnv" has an invalid HTTP header "X-Key" (names are letters, digits and -; values one line)',
      );
      const handler = create({ url: 'https://h/x', headers: { 'X-A': '1' }, headersEnv: { Authorization: 'FLESPI_HTTP_EDGES_TOKEN' } });
      assert.deepEqual(handler.settings.headers, { 'x-a': '1', authorization: 'Bearer t' });
    } finally {
      delete process.env.FLESPI_HTTP_EDGES_TOKEN;
      delete process.env.FLESPI_HTTP_EDGES_BAD;
    }
  });
});
