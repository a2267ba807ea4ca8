// What FlespiClient sends and how it reads every kind of answer, exactly, against a scripted fake
// flespi over real HTTP. Written to kill the mutants the sandbox-based tests let through (docs/testing.md):
// the sandbox validates parameters itself and only answers what flespi answers.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { startFakeFlespi, type FakeFlespi } from '../support/fakeFlespi';
import { flespiFailure } from '../support/flespiFailure';

const TOKEN = 'k'.repeat(64);
const CHANNEL = 9;
const MESSAGES = `/gw/channels/${CHANNEL}/messages`;

async function fake(t: TestContext): Promise<{ server: FakeFlespi; client: FlespiClient }> {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  return { server, client: new FlespiClient({ token: TOKEN, baseUrl: server.url }) };
}

test('requests: the token header with the prefix and spaces stripped, the app name cut to 63 characters, base URL slashes dropped', async (t) => {
  const { server } = await fake(t);
  server.on('GET', '/auth/info', { body: { result: [{ cid: 5 }] } });
  const client = new FlespiClient({ token: `  FlespiToken   ${TOKEN}  `, baseUrl: `${server.url}///`, appName: 'a'.repeat(70) });
  assert.equal(client.baseUrl, server.url);
  assert.deepEqual(await client.authInfo(), { cid: 5 });
  const [request] = server.requests;
  assert.equal(request!.path, '/auth/info', 'no doubled slash from the base URL');
  assert.equal(request!.headers.authorization, `FlespiToken ${TOKEN}`);
  assert.equal(request!.headers.accept, 'application/json');
  assert.equal(request!.headers['x-flespi-app'], 'a'.repeat(63));
  await new FlespiClient({ token: TOKEN, baseUrl: server.url }).authInfo();
  assert.equal(server.requests[1]!.headers['x-flespi-app'], undefined, 'no app header without an app name');
  assert.throws(() => new FlespiClient({ token: TOKEN, baseUrl: `x${server.url}` }), /is not an http\(s\) URL/);
  assert.throws(() => new FlespiClient({ token: TOKEN, baseUrl: 'http:///nohost' }), /is not an http\(s\) URL/);
});

test('requests: a poll and a history read send exactly the parameters given, and nothing for those left out', async (t) => {
  const { server, client } = await fake(t);
  server.on('GET', MESSAGES, { body: { result: [], next_key: 1 } });
  server.on('DELETE', MESSAGES, { body: { result: [] } });
  await client.pollChannelMessages(CHANNEL, { currKey: 0 });
  await client.pollChannelMessages(CHANNEL, { currKey: 7, limitCount: 10, limitSize: 5000, timeout: 2, delete: true });
  await client.pollChannelMessages(CHANNEL, { currKey: 7, timeout: 0, delete: false });
  await client.channelMessages(CHANNEL);
  await client.channelMessages(CHANNEL, { from: 1, to: 2, count: 3, reverse: false, filter: 'ident=="x"' });
  await client.deleteChannelMessages(CHANNEL, 2);
  assert.deepEqual(
    server.requests.map((r) => [r.method, r.data]),
    [
      ['GET', { curr_key: 0 }],
      ['GET', { curr_key: 7, limit_count: 10, limit_size: 5000, timeout: 2, delete: true }],
      ['GET', { curr_key: 7 }],
      ['GET', {}],
      ['GET', { from: 1, to: 2, count: 3, reverse: false, filter: 'ident=="x"' }],
      ['DELETE', { delete_key: 2 }],
    ],
  );
});

test('requests: device messages and collections send fields only when some are given', async (t) => {
  const { server, client } = await fake(t);
  server.on('GET', /^\/gw\/devices\/[^/]+\/messages$/, { body: { result: [] } });
  server.on('GET', /^\/gw\/(channels|devices|streams|channel-protocols)\/[^/]+$/, { body: { result: [{ id: 1 }] } });
  await client.deviceMessages('name=car*', { fields: [] });
  await client.deviceMessages(3, { fields: ['position.*', 'timestamp'], count: 1 });
  await client.channels('all', []);
  await client.devices('1,2', ['id', 'name']);
  await client.streams();
  await client.channelProtocols('name=teltonika');
  const seen = server.requests.map((r) => [r.path, r.data, r.query.get('fields')]);
  assert.deepEqual(seen, [
    ['/gw/devices/name=car*/messages', {}, null],
    ['/gw/devices/3/messages', { count: 1, fields: 'position.*,timestamp' }, null],
    ['/gw/channels/all', undefined, null],
    ['/gw/devices/1,2', undefined, 'id,name'],
    ['/gw/streams/all', undefined, null],
    ['/gw/channel-protocols/name=teltonika', undefined, null],
  ]);
});

test('client-side checks fail before any request, saying what is wrong', async (t) => {
  const { server, client } = await fake(t);
  for (const timeout of [31, -1, Number.NaN, Infinity]) {
    const error = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0, timeout }));
    assert.equal(error.kind, 'bad-request');
    assert.match(error.message, new RegExp(`^poll timeout ${timeout} s is out of range: flespi long-polls at most 30 s`));
  }
  assert.deepEqual(
    await client.pollChannelMessages(CHANNEL, { currKey: 0, timeout: 30 }).catch((e: FlespiError) => e.kind),
    'not-found',
    '30 s is allowed (and reaches the server)',
  );
  for (const key of [1, 0, -5, 2.5]) {
    const error = await flespiFailure(client.deleteChannelMessages(CHANNEL, key));
    assert.equal(error.kind, 'bad-request');
    assert.match(error.message, new RegExp(`^delete key ${key} is invalid: .* integer ≥ 2`));
  }
  assert.deepEqual(
    server.requests.map((r) => r.data),
    [{ curr_key: 0, timeout: 30 }],
    'only the valid poll was sent',
  );
});

test('every status is classified and named, with the reasons flespi gave', async (t) => {
  const { server, client } = await fake(t);
  const cases: [number, string, RegExp][] = [
    [
      400,
      'bad-request',
      /^flespi rejected the request parameters \(400 Bad Request: first; second\) on GET channel 9 at http:\/\/127\.0\.0\.1:\d+: fix the parameter it names/,
    ],
    [
      401,
      'auth',
      /^flespi rejected the token \(401 Unauthorized: first; second\) on GET channel 9 at .*: check the token at https:\/\/flespi\.io\/#\/panel\/tokens/,
    ],
    [403, 'forbidden', /^flespi refused access \(403 Forbidden: first; second\) on GET channel 9 at .*: the token or account is blocked/],
    [
      404,
      'not-found',
      /^channel 9 not found \(404 Not Found: first; second\) at http:\/\/127\.0\.0\.1:\d+: check the channel id; list channels with `flespi-receiver channels`$/,
    ],
    [
      429,
      'rate-limited',
      /^flespi rate limit hit \(429 Too Many Requests: first; second\) on GET channel 9 at .*: too many requests for this account; wait a little and retry/,
    ],
    [
      500,
      'server',
      /^flespi server error \(500 Internal Server Error: first; second\) on GET channel 9 at .*: usually temporary; retry later, and check https:\/\/status\.flespi\.io/,
    ],
    [502, 'server', /\(502 Bad Gateway: first; second\)/],
    [503, 'server', /\(503 Service Unavailable: first; second\)/],
    [504, 'server', /\(504 Gateway Timeout: first; second\)/],
    [507, 'server', /\(507 HTTP error: first; second\)/],
    [302, 'malformed', /^unexpected answer \(302 HTTP error: first; second\) on GET channel 9 at .*: check that the base URL points at the flespi REST API/],
    [418, 'malformed', /^unexpected answer \(418 HTTP error: first; second\)/],
  ];
  // Reasons that are not text, or empty, are left out of the message.
  const errors = [{ reason: 'first' }, { code: 5 }, { reason: '' }, { reason: 42 }, { reason: 'second' }];
  for (const [status, kind, message] of cases) {
    server.on('GET', MESSAGES, { status, body: { errors } });
    const error = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }));
    assert.equal(error.kind, kind, `status ${status}`);
    assert.equal(error.status, status);
    assert.match(error.message, message);
    assert.deepEqual(error.details, errors);
  }
  server.on('GET', MESSAGES, { status: 500, body: { errors: [{ code: 1 }] } });
  assert.match(
    (await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }))).message,
    /^flespi server error \(500 Internal Server Error\) on /,
    'no reasons, no colon',
  );
  server.on('GET', MESSAGES, { status: 500, body: 'oops' });
  assert.deepEqual((await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }))).details, [], 'a body that is not an envelope has no details');
});

test('Retry-After in seconds or as an HTTP date; blank or nonsense is ignored', async (t) => {
  const { server, client } = await fake(t);
  const retryAfter = async (header: string | undefined) => {
    server.on('GET', MESSAGES, { status: 429, body: { errors: [] }, headers: header === undefined ? {} : { 'retry-after': header } });
    return (await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }))).retryAfter;
  };
  assert.equal(await retryAfter('7'), 7);
  assert.equal(await retryAfter('0'), 0);
  assert.equal(await retryAfter(undefined), undefined);
  assert.equal(await retryAfter('   '), undefined);
  assert.equal(await retryAfter('soon'), undefined);
  assert.equal(await retryAfter(new Date(Date.now() - 60_000).toUTCString()), 0, 'a date in the past means now');
  const later = await retryAfter(new Date(Date.now() + 120_000).toUTCString());
  assert.ok(later !== undefined && later > 100 && later <= 121, `a date two minutes ahead is about 120 s, got ${later}`);
  server.on('GET', MESSAGES, { status: 429, body: { errors: [] }, headers: { 'retry-after': '7' } });
  assert.match((await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }))).message, /; wait 7 s and retry/);
});

test('2xx answers that are not an envelope are malformed and say what came instead', async (t) => {
  const { server, client } = await fake(t);
  const malformed = async (body: string, status = 200) => {
    server.on('GET', MESSAGES, { status, body });
    const error = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }));
    assert.equal(error.kind, 'malformed');
    assert.equal(error.status, status);
    return error.message;
  };
  assert.match(
    await malformed(''),
    /^flespi answered GET channel 9 at http:\/\/127\.0\.0\.1:\d+ with an empty body instead of its JSON envelope \(HTTP 200\): check that the base URL/,
  );
  assert.match(await malformed('', 204), /with an empty body instead of its JSON envelope \(HTTP 204\)/);
  const page = `<html>\n  <body>\t${'x'.repeat(100)}</body></html>`;
  assert.match(
    await malformed(page),
    new RegExp(`with "<html> <body> ${'x'.repeat(46)}…" instead of its JSON envelope`),
    'whitespace folded, cut at 60 characters',
  );
  assert.match(await malformed('  short text \n'), /with "short text" instead of/);
  assert.match(await malformed('[1,2]'), /with "\[1,2\]" instead of/);
  assert.match(await malformed('null'), /with "null" instead of/);
  assert.match(await malformed('"result"'), /with ""result"" instead of/);
  assert.match(await malformed('{"next_key":3}'), /with no "result" array instead of its JSON envelope/);
});

test('a 404 page is a wrong base URL; a 404 envelope or an empty 404 is a missing item', async (t) => {
  const { server, client } = await fake(t);
  server.on('GET', MESSAGES, { status: 404, body: '<h1>Not here</h1>' });
  const page = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }));
  assert.equal(page.kind, 'not-found');
  assert.match(
    page.message,
    /^http:\/\/127\.0\.0\.1:\d+ answered GET channel 9 at .* with 404 and a page that is not flespi's JSON: the base URL \(or region\) does not point at the flespi REST API/,
  );
  assert.equal(page.status, 404);
  server.on('GET', MESSAGES, { status: 404, body: '' });
  assert.match((await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }))).message, /^channel 9 not found \(404 Not Found\) at /);
  server.on('GET', /^\/gw\/devices\/\d+\/messages$/, { status: 404, body: { errors: [{ reason: 'no such device', id: 12 }] } });
  assert.match(
    (await flespiFailure(client.deviceMessages(12))).message,
    /^device 12 not found \(404 Not Found: no such device\) at .*: list devices with GET \/gw\/devices\/all$/,
  );
});

test('errors inside a 200 envelope list reason, code and id; code 3 anywhere means forbidden', async (t) => {
  const { server, client } = await fake(t);
  server.on('GET', MESSAGES, { body: { result: [], errors: [{ reason: 'bad filter', code: 2 }, { code: 7, id: 4 }, { reason: 'plain' }] } });
  const error = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }));
  assert.equal(error.kind, 'bad-request');
  assert.equal(error.status, 200);
  assert.match(
    error.message,
    /^flespi answered GET channel 9 at http:\/\/127\.0\.0\.1:\d+ with errors: bad filter \(code 2\); error \(code 7\) \[id 4\]; plain; check the channel id; list channels with `flespi-receiver channels`$/,
  );
  server.on('GET', MESSAGES, {
    body: {
      result: [],
      errors: [
        { reason: 'other', code: 2 },
        { reason: 'acl', code: 3 },
      ],
    },
  });
  const forbidden = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }));
  assert.equal(forbidden.kind, 'forbidden', 'one code 3 among others is enough');
  assert.match(forbidden.message, /with errors: other \(code 2\); acl \(code 3\); check the token's ACL at https:\/\/flespi\.io\/#\/panel\/tokens$/);
  server.on('GET', '/auth/info', { body: { result: [], errors: [{ reason: 'odd', code: 2 }] } });
  assert.match(
    (await flespiFailure(client.authInfo())).message,
    /with errors: odd \(code 2\); check the request parameters$/,
    'without a list hint, the generic one',
  );
});

test('collections: found items with the errors of missing ids; only errors is an error; neither is malformed', async (t) => {
  const { server, client } = await fake(t);
  server.on('GET', '/gw/channels/1,2', { body: { result: [{ id: 1 }], errors: [{ id: 2, reason: 'not found' }] } });
  server.on('GET', '/gw/channels/3', { body: { result: [], errors: [{ id: 3, code: 3, reason: 'acl' }] } });
  server.on('GET', '/gw/channels/4', { body: { errors: [] } });
  server.on('GET', '/gw/channels/5', { body: { result: [] } });
  assert.deepEqual(await client.channels('1,2'), { items: [{ id: 1 }], errors: [{ id: 2, reason: 'not found' }] });
  const refused = await flespiFailure(client.channels(3));
  assert.equal(refused.kind, 'forbidden');
  assert.match(refused.message, /^flespi answered GET channel 3 at .* with errors: acl \(code 3\) \[id 3\]/);
  const empty = await flespiFailure(client.channels(4));
  assert.equal(empty.kind, 'malformed');
  assert.match(empty.message, /GET channel 4 at .* with no "result" array/);
  assert.deepEqual(await client.channels(5), { items: [], errors: [] });
});

test("abort: the caller's AbortError is passed on as it is; any other reason becomes an AbortError with it as the cause", async (t) => {
  const { server, client } = await fake(t);
  server.on('GET', MESSAGES, { body: { result: [], next_key: 1 }, delayMs: 5000 });
  const own = new Error('stopping');
  own.name = 'AbortError';
  const first = new AbortController();
  const pending = client.pollChannelMessages(CHANNEL, { currKey: 0 }, first.signal);
  first.abort(own);
  await assert.rejects(pending, (e: unknown) => e === own);
  const second = new AbortController();
  const reason = new Error('user pressed stop');
  second.abort(reason);
  await assert.rejects(
    client.authInfo(second.signal),
    (e: unknown) => e instanceof Error && e.name === 'AbortError' && e.message === 'the request was aborted' && e.cause === reason,
  );
});
