// FlespiClient's collections (channels, devices, streams, protocols) against the fake flespi: the
// queries it sends page by page, when it stops, what it does when paging is refused, and what an
// error for each kind of item says. Also how errors inside a 200 envelope are classified.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { COLLECTION_PAGE_LIMIT, envelopeKind, FlespiClient, retryAfterSeconds } from '../../src/core/flespi/client';
import { startFakeFlespi, type FakeFlespi, type FakeRequest } from '../support/fakeFlespi';
import { isFlespiError } from '../support/flespiFailure';

async function fake(t: TestContext): Promise<FakeFlespi> {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  return server;
}

const clientFor = (server: FakeFlespi) => new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
const items = (ids: number[]) => ids.map((id) => ({ id, name: `n${id}` }));

/** A server holding `count` channels that answers at most `pageSize` per request (its pagination.limit). */
function pagedChannels(count: number, pageSize: number) {
  return (r: FakeRequest) => {
    const offset = Number(r.query.get('offset') ?? 0);
    const ids = Array.from({ length: count }, (_, i) => i + 1).slice(offset, offset + pageSize);
    return { body: { result: items(ids), pagination: { limit: pageSize } } };
  };
}

test('pages: fields and limit/offset in the query, following the server page size, until a short page', async (t) => {
  const server = await fake(t);
  server.on('GET', '/gw/channels/all', pagedChannels(5, 2));
  const { items: got } = await clientFor(server).channels('all', ['id', 'name']);
  assert.deepEqual(
    got.map((i) => i.id),
    [1, 2, 3, 4, 5],
  );
  assert.deepEqual(
    server.requestsTo('GET', '/gw/channels/all').map((r) => r.query.toString()),
    [0, 2, 4].map((offset) => `fields=id%2Cname&limit=${COLLECTION_PAGE_LIMIT}&offset=${offset}`),
  );
});

test('pages: without fields the query is paging alone; an empty page after a full one ends the list', async (t) => {
  const server = await fake(t);
  server.on('GET', '/gw/channels/all', pagedChannels(4, 2));
  assert.equal((await clientFor(server).channels()).items.length, 4);
  assert.deepEqual(
    server.requestsTo('GET', '/gw/channels/all').map((r) => r.query.toString()),
    [0, 2, 4].map((offset) => `limit=${COLLECTION_PAGE_LIMIT}&offset=${offset}`),
  );
});

test('a server that ignores offset (the same page again) is read once: no item twice, no endless paging', async (t) => {
  const server = await fake(t);
  server.on('GET', '/gw/channels/all', { body: { result: items([1, 2]), pagination: { limit: 2 } } });
  assert.deepEqual(
    (await clientFor(server).channels()).items.map((i) => i.id),
    [1, 2],
  );
  assert.equal(server.requestsTo('GET', '/gw/channels/all').length, 2);
});

test('a page that brings one new item among old ones keeps paging', async (t) => {
  const server = await fake(t);
  server.on(
    'GET',
    '/gw/channels/all',
    { body: { result: items([1, 2]), pagination: { limit: 2 } } },
    { body: { result: items([2, 3]), pagination: { limit: 2 } } },
    { body: { result: items([4]), pagination: { limit: 2 } } },
  );
  assert.deepEqual(
    (await clientFor(server).channels()).items.map((i) => i.id),
    [1, 2, 3, 4],
  );
});

test('only a first page refused as a bad request is asked again without paging; other refusals are errors', async (t) => {
  const server = await fake(t);
  // 400 on the second page: the request itself is wrong there, not the paging.
  server.on('GET', '/gw/channels/all', pagedChannels(4, 2), { status: 400, body: { errors: [{ code: 2, reason: 'bad offset' }] } });
  await assert.rejects(clientFor(server).channels(), isFlespiError('bad-request', /bad offset/));
  assert.equal(server.requestsTo('GET', '/gw/channels/all').length, 2);

  const refusing = await fake(t);
  refusing.on('GET', '/gw/channels/all', { status: 503, body: { errors: [{ reason: 'maintenance' }] } });
  await assert.rejects(clientFor(refusing).channels(), isFlespiError('server', /maintenance/));
  assert.equal(refusing.requestsTo('GET', '/gw/channels/all').length, 1, 'a server error is not taken for missing paging');
});

test('each kind of item is named when it does not exist, with where to list them', async (t) => {
  const server = await fake(t);
  server.on('GET', /^\/gw\/(devices|streams|channel-protocols)\/7$/, { status: 404, body: { errors: [{ code: 404, reason: 'nope' }] } });
  const client = clientFor(server);
  await assert.rejects(
    client.devices(7),
    isFlespiError('not-found', /^device 7 not found \(404 Not Found: nope\) at http:\/\/127\.0\.0\.1:\d+: list devices with GET \/gw\/devices\/all$/),
  );
  await assert.rejects(
    client.streams(7),
    isFlespiError('not-found', /^stream 7 not found \(404 Not Found: nope\) at http:\/\/127\.0\.0\.1:\d+: list streams with GET \/gw\/streams\/all$/),
  );
  await assert.rejects(
    client.channelProtocols(7),
    isFlespiError(
      'not-found',
      /^channel protocol 7 not found \(404 Not Found: nope\) at http:\/\/127\.0\.0\.1:\d+: list protocols with GET \/gw\/channel-protocols\/all$/,
    ),
  );
  // An item id given as text is still the id asked for: an error naming it means "not found".
  server.on('GET', '/gw/devices/12', { body: { result: [], errors: [{ code: 7, reason: 'gone', id: 12 }] } });
  await assert.rejects(
    client.devices('12'),
    isFlespiError(
      'not-found',
      /^flespi answered GET device 12 at http:\/\/127\.0\.0\.1:\d+ with errors: gone \(code 7\) \[id 12\]; device 12 not found: list devices with GET \/gw\/devices\/all$/,
    ),
  );
});

test('envelopeKind: which errors inside a 200 mean forbidden, auth, not found or a bad request', () => {
  assert.equal(envelopeKind([{ code: 403 }]), 'forbidden');
  assert.equal(envelopeKind([{ code: 2 }, { code: 3 }]), 'forbidden');
  assert.equal(envelopeKind([{ code: 2 }, { code: 401 }]), 'auth', 'one auth error among others');
  assert.equal(envelopeKind([]), 'bad-request', 'no errors at all is not "not found"');
  assert.equal(envelopeKind([{ code: 404 }, { code: 2, reason: 'bad field' }]), 'bad-request', 'not found only when every error says so');
  assert.equal(envelopeKind([{ code: 7, id: 12 }], 12), 'not-found');
  assert.equal(envelopeKind([{ code: 7, id: 13 }], 12), 'bad-request');
  for (const reason of ['channel not  found', 'it doesnot exist', "it doesn't  exist", 'it does not exist', 'no  such item', 'unknown  device  id']) {
    assert.equal(envelopeKind([{ code: 2, reason }]), 'not-found', reason);
  }
  for (const reason of ['not allowed', 'unknown field', 'does exist']) assert.equal(envelopeKind([{ code: 2, reason }]), 'bad-request', reason);
});

test('retryAfterSeconds: blank is none, a negative number is no wait, a number too large for a delay is none', () => {
  assert.equal(retryAfterSeconds('   '), undefined);
  assert.equal(retryAfterSeconds('-5'), 0);
  assert.equal(retryAfterSeconds('1e400'), undefined);
  assert.equal(retryAfterSeconds(' 7 '), 7);
});
