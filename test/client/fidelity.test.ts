// Issue 12 (REST side): the client against the sandbox in each of the forms flespi may answer in
// where our sources are unsure (docs/flespi-assumptions.md): error codes as small integers or HTTP
// statuses, unknown ids as 404 or as 200 with `errors`, collections in pages, and a server clock
// that is not ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient, envelopeKind } from '../../src/core/flespi/client';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index';
import { startFakeFlespi } from '../support/fakeFlespi';
import { runCli } from '../reliability/support';

const TIMEOUT = { timeout: 60_000 };

async function sandboxWith(options: SandboxOptions, t: { after(fn: () => Promise<void>): void }): Promise<Sandbox> {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1, ...options });
  t.after(() => sandbox.stop());
  return sandbox;
}

async function rawErrors(
  sandbox: Sandbox,
  path: string,
): Promise<{ status: number; body: { result?: unknown[]; errors?: { code: number; reason: string; id?: number }[] } }> {
  const response = await fetch(`${sandbox.restUrl}${path}`, { headers: { Authorization: `FlespiToken ${sandbox.token}` } });
  return { status: response.status, body: (await response.json()) as never };
}

test(
  'sandbox error codes are flespi small integers by default (2 bad request / unknown id, 3 blocked), HTTP statuses with errorCodes "http"',
  TIMEOUT,
  async (t) => {
    const flespiStyle = await sandboxWith({}, t);
    const bad = await rawErrors(flespiStyle, '/gw/channels/1001/messages?data=%7B%22bogus%22%3A1%7D');
    assert.equal(bad.status, 400);
    assert.deepEqual(
      bad.body.errors?.map((e) => e.code),
      [2],
    );
    const missing = await rawErrors(flespiStyle, '/gw/channels/424242');
    assert.equal(missing.status, 404);
    assert.deepEqual(
      missing.body.errors?.map((e) => [e.code, e.id]),
      [[2, 424242]],
    );
    const partial = await rawErrors(flespiStyle, '/gw/channels/1001,424242');
    assert.deepEqual([partial.status, partial.body.result?.length, partial.body.errors?.map((e) => e.code)], [200, 1, [2]]);
    flespiStyle.addToken('b'.repeat(64), { blocked: true });
    const blocked = await fetch(`${flespiStyle.restUrl}/auth/info`, { headers: { Authorization: `FlespiToken ${'b'.repeat(64)}` } });
    assert.equal(blocked.status, 403);
    assert.deepEqual(
      ((await blocked.json()) as { errors: { code: number }[] }).errors.map((e) => e.code),
      [3],
    );

    const httpStyle = await sandboxWith({ errorCodes: 'http' }, t);
    assert.deepEqual(
      (await rawErrors(httpStyle, '/gw/channels/424242')).body.errors?.map((e) => e.code),
      [404],
    );
    assert.deepEqual(
      (await rawErrors(httpStyle, '/gw/channels/1001/messages?data=%7B%22bogus%22%3A1%7D')).body.errors?.map((e) => e.code),
      [400],
    );
  },
);

test(
  'an unknown channel is "not found" whichever form flespi answers it in (404 or 200 with errors, code 2 or 404): client, Receiver and CLI',
  TIMEOUT,
  async (t) => {
    for (const options of [{}, { errorCodes: 'http' }, { notFoundStatus: 200 }, { notFoundStatus: 200, errorCodes: 'http' }] as SandboxOptions[]) {
      const sandbox = await sandboxWith(options, t);
      const form = JSON.stringify(options);
      const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
      await assert.rejects(
        client.channels(424242, ['id', 'name']),
        (e: FlespiError) => e.kind === 'not-found' && e.details[0]?.id === 424242 && /channel 424242/.test(e.message),
        `channels(), ${form}`,
      );
      const partial = await client.channels('1001,424242', ['id', 'name']);
      assert.deepEqual(
        [partial.items.map((i) => i.id), partial.errors.map((e) => e.id)],
        [[1001], [424242]],
        `a partial answer keeps the found channel and the error, ${form}`,
      );
      const receiver = new Receiver({ source: new RestSource({ client, channelId: 424242, timeout: 1 }), handlers: [], retry: { initialMs: 10, maxMs: 20 } });
      await receiver.start();
      await assert.rejects(
        receiver.done,
        (e: FlespiError) => e.kind === 'not-found' && /channel 424242 not found/.test(e.message),
        `the Receiver stops with not-found, ${form}`,
      );
      const cli = await runCli(['tail', '424242', '--base-url', sandbox.restUrl], { env: { FLESPI_TOKEN: sandbox.token } });
      assert.equal(cli.status, 2, `${form}: ${cli.stderr}`);
      assert.match(cli.stderr, /channel 424242 not found at http:\/\/127\.0\.0\.1:\d+: list the channels/);
    }
  },
);

test('an ACL refusal inside a 200 (code 3) is "forbidden", a code 2 error on a listed id is a bad request, not "not found"', TIMEOUT, async () => {
  assert.equal(envelopeKind([{ code: 3, reason: 'action is not permitted by ACL' }]), 'forbidden');
  assert.equal(envelopeKind([{ code: 2, reason: 'field "x" is not allowed', id: 7 }], 7), 'bad-request');
  assert.equal(envelopeKind([{ code: 404, reason: 'nope' }]), 'not-found');
  assert.equal(envelopeKind([{ code: 2, reason: 'channel 7 not found', id: 7 }], 7), 'not-found');
});

test(
  'collections are read page by page (limit/offset, following pagination.limit): 250 channels from a server that answers 100 at a time, through the client and `channels`',
  TIMEOUT,
  async (t) => {
    const channels = Array.from({ length: 250 }, (_, i) => ({ id: 2001 + i, name: `ch-${String(i).padStart(3, '0')}` }));
    const sandbox = await sandboxWith({ channels, devicesPerChannel: 0, collectionLimit: 100 }, t);
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    const { items } = await client.channels('all', ['id', 'name']);
    assert.equal(items.length, 250);
    assert.deepEqual(new Set(items.map((i) => i.id)).size, 250, 'no channel twice');
    const cli = await runCli(['channels', '--base-url', sandbox.restUrl], { env: { FLESPI_TOKEN: sandbox.token } });
    assert.equal(cli.status, 0, cli.stderr);
    for (const id of [2001, 2101, 2201, 2250]) assert.match(cli.stdout, new RegExp(`^${id}\\b`, 'm'), `channel ${id} is listed`);
  },
);

test('a server without paging (refuses limit/offset with 400) is asked once more without them, and not paged again', TIMEOUT, async (t) => {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  server.on('GET', '/gw/channels/all', (r) =>
    r.query.has('limit')
      ? { status: 400, body: { errors: [{ code: 2, reason: 'unknown parameter "limit"' }] } }
      : {
          body: {
            result: [
              { id: 1, name: 'a' },
              { id: 2, name: 'b' },
            ],
          },
        },
  );
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  assert.deepEqual(
    (await client.channels()).items.map((i) => i.id),
    [1, 2],
  );
  assert.deepEqual(
    (await client.channels()).items.map((i) => i.id),
    [1, 2],
  );
  assert.deepEqual(
    server.requestsTo('GET', '/gw/channels/all').map((r) => r.query.has('limit')),
    [true, false, false],
  );
});

test(
  'serverNow() follows the server clock from its Date header, not the local one (a sandbox 90 s ahead), and never lags the newest server.timestamp read',
  TIMEOUT,
  async (t) => {
    const offsetMs = 90_000;
    const sandbox = await sandboxWith({ clockOffsetMs: offsetMs }, t);
    const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
    assert.equal(client.clockSkewMs, undefined, 'no answer yet');
    await client.channels('all', ['id']);
    await client.channels('all', ['id']);
    const skew = client.clockSkewMs ?? 0;
    assert.ok(Math.abs(skew - offsetMs) <= 1500, `skew ${skew} ms, the sandbox runs ${offsetMs} ms ahead`);
    const now = client.serverNow();
    const real = Date.now() + offsetMs;
    assert.ok(now >= real - 50 && now <= real + 2500, `serverNow ${now - real} ms from the sandbox clock: at least it, at most ~1 s + a round trip ahead`);
    // The sandbox stamps server.timestamp by its own clock too, and the client reads it.
    sandbox.inject(1001, [{ ident: 'clock' }]);
    const [message] = await client.channelMessages(1001, { reverse: true, count: 1 });
    const stamp = (message?.['server.timestamp'] as number) * 1000;
    assert.ok(Math.abs(stamp - (Date.now() + offsetMs)) < 2000, 'server.timestamp is on the sandbox clock');
    assert.ok(client.serverNow() >= stamp, 'serverNow is never before a server.timestamp it read');
  },
);
