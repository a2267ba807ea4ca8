// FlespiClient against answers the sandbox never gives, from a scripted fake flespi over real HTTP.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { startFakeFlespi, type FakeFlespi } from '../support/fakeFlespi';
import { flespiFailure } from '../support/flespiFailure';

const CHANNEL = 77;
const TOKEN = 'T'.repeat(64);
const MESSAGES = `/gw/channels/${CHANNEL}/messages`;

async function fake(t: TestContext): Promise<FakeFlespi> {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  return server;
}

const refused = { code: 3, reason: 'access denied' };

test('a 200 with `errors` beside `result` is an error on the messages, delete and auth endpoints, never a success', async (t) => {
  const server = await fake(t);
  const client = new FlespiClient({ token: TOKEN, baseUrl: server.url });
  server.on('GET', MESSAGES, { body: { result: [{ ident: 'a' }], next_key: 2, errors: [refused] } });
  server.on('DELETE', MESSAGES, { body: { result: [], errors: [refused] } });
  server.on('GET', '/auth/info', { body: { result: [{ cid: 1 }], errors: [{ code: 7, reason: 'token expires' }] } });

  const poll = await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 0 }));
  assert.equal(poll.kind, 'forbidden');
  assert.equal(poll.status, 200);
  assert.deepEqual(poll.details, [refused]);
  assert.match(poll.message, /GET channel 77 .* with errors: access denied \(code 3\)/);

  const deleted = await flespiFailure(client.deleteChannelMessages(CHANNEL, 5));
  assert.equal(deleted.kind, 'forbidden', 'acknowledged messages that flespi did not delete must not pass silently');
  assert.match(deleted.message, /DELETE channel 77 .* with errors: access denied \(code 3\)/);
  assert.deepEqual(
    server.requestsTo('DELETE', MESSAGES).map((r) => r.data),
    [{ delete_key: 5 }],
  );

  const auth = await flespiFailure(client.authInfo());
  assert.equal(auth.kind, 'bad-request');
  assert.match(auth.message, /token info .* with errors: token expires \(code 7\)/);

  // The history reads go through the same envelope check.
  assert.equal((await flespiFailure(client.channelMessages(CHANNEL, { count: 1 }))).kind, 'forbidden');
  assert.deepEqual(server.unmatched, []);
});

test('a 200 without a `result` array is malformed; a clean envelope still succeeds', async (t) => {
  const server = await fake(t);
  const client = new FlespiClient({ token: TOKEN, baseUrl: server.url });
  server.on('GET', MESSAGES, { body: { next_key: 3 } }, { body: { result: [{ ident: 'b' }], next_key: 3 } });
  server.on('DELETE', MESSAGES, { body: { result: {} } }, { body: { result: [] } });
  assert.equal((await flespiFailure(client.pollChannelMessages(CHANNEL, { currKey: 2 }))).kind, 'malformed');
  assert.deepEqual(await client.pollChannelMessages(CHANNEL, { currKey: 2 }), { messages: [{ ident: 'b' }], nextKey: 3 });
  assert.equal((await flespiFailure(client.deleteChannelMessages(CHANNEL, 3))).kind, 'malformed');
  await client.deleteChannelMessages(CHANNEL, 3);
  assert.equal(server.requests.length, 4);
});

test('a token with spaces or control characters is refused without quoting any of it', () => {
  for (const token of [
    'secretpart1 secretpart2',
    'secretpart1\tsecretpart2',
    'secretpart1\u0000secretpart2',
    'secretpart1\u007fsecretpart2',
    'FlespiToken secretpart1\nsecretpart2',
  ]) {
    assert.throws(
      () => new FlespiClient({ token }),
      (error: unknown) => {
        assert.ok(error instanceof FlespiError, `expected a FlespiError, got ${String(error)}`);
        assert.equal(error.kind, 'auth');
        assert.match(error.message, /spaces or control characters/);
        assert.ok(!error.message.includes('secretpart'), `the message quotes the token: ${error.message}`);
        assert.ok(!JSON.stringify(error).includes('secretpart'), 'the error fields do not carry the token either');
        return true;
      },
      JSON.stringify(token),
    );
  }
});
