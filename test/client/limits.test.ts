// FlespiClient's bounds on what a server may do, in process against the fake flespi: the body cap of a
// poll and of other requests (and the error naming how it was chosen), the deadline of the whole
// answer, the clock estimate from Date headers and server.timestamp, and collection paging.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  BODY_BYTES_PER_MESSAGE,
  COLLECTION_PAGE_LIMIT,
  DEFAULT_MAX_BODY_BYTES,
  FlespiClient,
  pollBodyCap,
  type FlespiClientOptions,
} from '../../src/core/flespi/client';
import { startFakeFlespi, type FakeFlespi } from '../support/fakeFlespi';
import { isFlespiError } from '../support/flespiFailure';

const MiB = 1024 * 1024;
const POLL = '/gw/channels/5/messages';

async function fake(t: TestContext): Promise<FakeFlespi> {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  return server;
}

const clientFor = (server: FakeFlespi, options: Partial<FlespiClientOptions> = {}) =>
  new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url, ...options });

test('pollBodyCap: limit_size plus 16 MiB, else limit_count × 64 KiB but at least 16 MiB, else the default; never past 512 MiB', () => {
  assert.equal(pollBodyCap({ limitSize: 1000 }), 1000 + 16 * MiB);
  assert.equal(pollBodyCap({ limitSize: 1000, limitCount: 1 }), 1000 + 16 * MiB, 'limit_size wins');
  assert.equal(pollBodyCap({ limitSize: 0, limitCount: 1000 }), 1000 * BODY_BYTES_PER_MESSAGE, 'limit_size 0 is no limit');
  assert.equal(pollBodyCap({ limitCount: 1 }), 16 * MiB);
  assert.equal(pollBodyCap({ limitCount: 256 }), 16 * MiB);
  assert.equal(pollBodyCap({ limitCount: 257 }), 257 * 64 * 1024);
  assert.equal(pollBodyCap({ limitCount: 0 }), DEFAULT_MAX_BODY_BYTES);
  assert.equal(pollBodyCap({}), DEFAULT_MAX_BODY_BYTES);
  assert.equal(pollBodyCap({ limitCount: 1_000_000 }), 512 * MiB);
  assert.equal(pollBodyCap({ limitSize: 2 ** 40 }), 512 * MiB);
  assert.equal(pollBodyCap({ limitSize: 1.5 }), Math.floor(1.5 + 16 * MiB));
});

test('an answer past its cap is dropped as it arrives, with an error that says how the cap was chosen', async (t) => {
  const server = await fake(t);
  server.on('GET', POLL, { hugeBytes: 17 * MiB });
  server.on('GET', '/gw/channels/all', { hugeBytes: 2 * MiB });
  const client = clientFor(server, { maxBodyBytes: 1.5 * MiB });
  await assert.rejects(
    client.pollChannelMessages(5, { currKey: 0, limitCount: 2 }),
    isFlespiError(
      'malformed',
      /^the answer to GET channel 5 at http:\/\/127\.0\.0\.1:\d+ is larger than 16 MiB \(limit_count 2 × 64 KiB per message; set limitSize if your messages are larger\): it was dropped while arriving; lower limitCount or set limitSize/,
    ),
  );
  await assert.rejects(
    client.pollChannelMessages(5, { currKey: 0, limitSize: 100 }),
    isFlespiError('malformed', /is larger than 16 MiB \(limit_size 100 bytes plus 16 MiB for the last message\): it was dropped/),
  );
  await assert.rejects(
    client.channels(),
    isFlespiError('malformed', /^the answer to GET channel all at \S+ is larger than 1\.5 MiB: it was dropped while arriving/),
  );
});

test('the whole answer must arrive within timeoutMs, plus the long-poll wait for a poll; the error says which', async (t) => {
  const server = await fake(t);
  const dripping = { drip: { everyMs: 100, endless: true }, body: '{"result":[' };
  server.on('GET', POLL, dripping);
  server.on('GET', '/auth/info', dripping);
  const client = clientFor(server, { timeoutMs: 300 });
  const began = Date.now();
  await assert.rejects(
    client.authInfo(),
    isFlespiError(
      'timeout',
      /^no answer from http:\/\/127\.0\.0\.1:\d+ within 0\.3 s \(GET token info, the whole answer\): the server is slow or the connection stalls; check your network, or raise the request timeout \(flespi\.timeoutMs in a config file\)$/,
    ),
  );
  assert.ok(Date.now() - began >= 290, 'not before the deadline');
  await assert.rejects(
    client.pollChannelMessages(5, { currKey: 0, timeout: 1 }),
    isFlespiError('timeout', /within 1\.3 s \(the long-poll wait plus 0\.3 s; GET channel 5, the whole answer\)/),
  );
  assert.ok(Date.now() - began >= 1550, 'the poll had its wait on top');
});

test('the clock estimate: Date headers bound the skew and narrow it; a Date that no longer fits starts over; garbage is ignored', async (t) => {
  const server = await fake(t);
  let offsetMs = 3_600_000;
  let header: string | undefined;
  server.on('GET', '/auth/info', () => ({ headers: { Date: header ?? new Date(Date.now() + offsetMs).toUTCString() }, body: { result: [{}] } }));
  const client = clientFor(server);
  const localBefore = Date.now();
  assert.ok(client.serverNow() >= localBefore && client.serverNow() <= Date.now() + 5, 'before any answer: the local clock');
  assert.equal(client.clockSkewMs, undefined);
  header = 'not a date';
  await client.authInfo();
  assert.equal(client.clockSkewMs, undefined, 'an unreadable Date says nothing');
  header = undefined;
  for (let i = 0; i < 3; i++) await client.authInfo();
  const ahead = client.clockSkewMs!;
  assert.ok(Math.abs(ahead - offsetMs) <= 1000, `skew ${ahead} ms, the server runs ${offsetMs} ms ahead`);
  const now = client.serverNow();
  assert.ok(now >= Date.now() + offsetMs - 1000 && now <= Date.now() + offsetMs + 1100, `serverNow ${now - Date.now()} ms ahead`);
  offsetMs = -7_200_000; // the server's clock was set back two hours: the old samples no longer fit
  await client.authInfo();
  assert.ok(Math.abs(client.clockSkewMs! - offsetMs) <= 1000, `skew ${client.clockSkewMs} ms after the clock was set`);
  assert.ok(client.serverNow() <= Date.now() + offsetMs + 1100);
});

test('serverNow is never before the newest finite server.timestamp read', async (t) => {
  const server = await fake(t);
  const future = Math.floor(Date.now() / 1000) + 86_400;
  server.on('GET', POLL, {
    headers: { Date: new Date().toUTCString() },
    body: {
      result: [
        { ident: 'a', 'server.timestamp': future },
        { ident: 'b', 'server.timestamp': String(future + 999) }, // not a number: ignored
        { ident: 'c', 'server.timestamp': future - 10 },
      ],
      next_key: 4,
    },
  });
  const client = clientFor(server);
  const { nextKey, messages } = await client.pollChannelMessages(5, { currKey: 0 });
  assert.equal(nextKey, 4);
  assert.equal(messages.length, 3);
  assert.equal(client.serverNow(), future * 1000);
});

test('collections: pagination.limit is followed when smaller and valid, else 1000; ids already listed are not repeated; a page adding nothing ends the listing; per-id errors of every page are kept', async (t) => {
  const server = await fake(t);
  const items = Array.from({ length: 25 }, (_, i) => ({ id: i + 1 }));
  let paginationLimit: unknown = 10;
  server.on('GET', '/gw/devices/all', (request) => {
    const offset = Number(request.query.get('offset'));
    return {
      body: {
        result: items.slice(offset, offset + 10),
        errors: offset === 10 ? [{ code: 7, id: 99, reason: 'odd' }] : [],
        pagination: { limit: paginationLimit },
      },
    };
  });
  const client = clientFor(server);
  const listed = await client.devices();
  assert.deepEqual(
    listed.items.map((i) => i.id),
    items.map((i) => i.id),
  );
  assert.deepEqual(listed.errors, [{ code: 7, id: 99, reason: 'odd' }]);
  assert.deepEqual(
    server.requestsTo('GET', '/gw/devices/all').map((r) => r.query.get('offset')),
    ['0', '10', '20'],
  );
  assert.equal(server.requestsTo('GET', '/gw/devices/all')[0]!.query.get('limit'), String(COLLECTION_PAGE_LIMIT));
  for (const bogus of [0, -5, '10', 5000]) {
    paginationLimit = bogus;
    const before = server.requests.length;
    const { items: got } = await client.devices();
    assert.equal(got.length, 10, `pagination.limit ${JSON.stringify(bogus)}: a page of 10 is short of 1000, so it is the last`);
    assert.equal(server.requests.length - before, 1);
  }

  // A server that ignores offset: the second page repeats the first and ends the listing.
  server.on('GET', '/gw/streams/all', { body: { result: Array.from({ length: 1000 }, (_, i) => ({ id: i })) } });
  const streams = await client.streams();
  assert.equal(streams.items.length, 1000);
  assert.equal(server.requestsTo('GET', '/gw/streams/all').length, 2);

  // Only errors, no items: the listing fails with them.
  server.on('GET', '/gw/channel-protocols/7', { body: { result: [], errors: [{ code: 7, id: 7, reason: 'no such protocol' }] } });
  await assert.rejects(client.channelProtocols(7), isFlespiError('not-found', /no such protocol \(code 7\) \[id 7\]/));
});
