// The sandbox REST API over raw HTTP, for what the client does not exercise: encodings, auth
// headers, validation answers and the sandbox control API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';

let sandbox: Sandbox;

before(async () => {
  sandbox = await startSandbox({ simulate: false, seed: 3 });
});

after(async () => {
  await sandbox.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** One raw HTTP request; `path` is sent exactly as given (no URL normalisation). */
function call(method: string, path: string, options: { body?: string; auth?: string | null } = {}): Promise<Answer> {
  const url = new URL(sandbox.restUrl);
  const headers: Record<string, string> = {};
  const auth = options.auth === undefined ? `FlespiToken ${sandbox.token}` : options.auth;
  if (auth !== null) headers.Authorization = auth;
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const reasons = (answer: Answer) => ((answer.body.errors ?? []) as { reason: string }[]).map((e) => e.reason).join(' | ');
const results = (answer: Answer) => answer.body.result as Record<string, unknown>[];

let nextChannelId = 3001;
function freshChannel(): number {
  const id = nextChannelId++;
  sandbox.store.addChannel({ id, name: `raw-${id}`, protocol: 'queclink' });
  return id;
}

describe('auth', () => {
  test('401 without a header, with a bare token, or with an unknown token; 403 when blocked', async () => {
    const missing = await call('GET', '/gw/channels/all', { auth: null });
    assert.equal(missing.status, 401);
    assert.match(reasons(missing), /Authorization: FlespiToken <token>/);
    assert.equal((await call('GET', '/gw/channels/all', { auth: sandbox.token })).status, 401);
    assert.equal((await call('GET', '/gw/channels/all', { auth: 'FlespiToken nope' })).status, 401);
    sandbox.addToken('blocked-token', { blocked: true });
    const blocked = await call('GET', '/auth/info', { auth: 'FlespiToken blocked-token' });
    assert.equal(blocked.status, 403);
    assert.match(reasons(blocked), /blocked/);
    assert.equal((await call('GET', '/sandbox/info', { auth: null })).status, 401, 'the control API needs the token too');
  });
});

describe('the data parameter', () => {
  test('URL-encoded, raw JSON with && inside, and a GET body all work', async () => {
    const id = freshChannel();
    sandbox.inject(id, [
      { ident: 'a', v: 1 },
      { ident: 'b', v: 2 },
      { ident: 'c', v: 3 },
    ]);
    const encoded = await call('GET', `/gw/channels/${id}/messages?data=${encodeURIComponent(JSON.stringify({ filter: 'v>1&&v<3' }))}`);
    assert.deepEqual(
      results(encoded).map((m) => m.v),
      [2],
    );
    const raw = await call('GET', `/gw/channels/${id}/messages?data={"filter":"v>1&&v<=3","count":5}`);
    assert.equal(raw.status, 200, reasons(raw));
    assert.deepEqual(
      results(raw).map((m) => m.v),
      [2, 3],
    );
    const viaBody = await call('GET', `/gw/channels/${id}/messages`, { body: JSON.stringify({ curr_key: 3 }) });
    assert.deepEqual(
      results(viaBody).map((m) => m.v),
      [3],
    );
    assert.equal(viaBody.body.next_key, 4);
  });

  test('invalid JSON, unknown parameters, mixed styles and out-of-range values answer 400 with code 2', async () => {
    const cases: [string, RegExp][] = [
      ['data=%7Bnot-json', /not valid JSON/],
      [`data=${encodeURIComponent('[1]')}`, /JSON object/],
      [`data=${encodeURIComponent('{"currKey":1}')}`, /unknown parameter "currKey"/],
      [`data=${encodeURIComponent('{"curr_key":1,"from":5}')}`, /not both/],
      [`data=${encodeURIComponent('{"timeout":31}')}`, /timeout must be a number from 0 to 30/],
      [`data=${encodeURIComponent('{"limit_count":0}')}`, /limit_count/],
      [`data=${encodeURIComponent('{"from":10,"to":5}')}`, /after to/],
      [`data=${encodeURIComponent('{"filter":"speed=5"}')}`, /compare with ==/],
    ];
    for (const [query, reason] of cases) {
      const answer = await call('GET', `/gw/channels/1001/messages?${query}`);
      assert.equal(answer.status, 400, query);
      assert.equal((answer.body.errors as { code: number }[])[0]?.code, 2);
      assert.match(reasons(answer), reason);
    }
  });
});

describe('collections and messages', () => {
  test('404 for unknown ids and endpoints, 400 for bad selectors and unknown fields', async () => {
    const unknown = await call('GET', '/gw/channels/77,78');
    assert.equal(unknown.status, 404);
    assert.deepEqual(
      (unknown.body.errors as { id: number }[]).map((e) => e.id),
      [77, 78],
    );
    assert.equal((await call('GET', '/gw/nothing/all')).status, 404);
    assert.match(reasons(await call('GET', '/gw/channels/name')), /selector "name" is invalid/);
    assert.match(reasons(await call('GET', '/gw/channels/all?fields=id,colour')), /unknown channel field colour/);
    const empty = await call('GET', '/gw/channels/name=nothing*');
    assert.deepEqual([empty.status, empty.body.result], [200, []], 'a mask that matches nothing is an empty success');
  });

  test('DELETE with delete_key removes smaller keys and answers the channel id', async () => {
    const id = freshChannel();
    sandbox.inject(id, [{ ident: 'x' }, { ident: 'y' }, { ident: 'z' }]);
    const deleted = await call('DELETE', `/gw/channels/${id}/messages?data=${encodeURIComponent('{"delete_key":3}')}`);
    assert.deepEqual(deleted.body.result, [id]);
    assert.deepEqual(
      results(await call('GET', `/gw/channels/${id}/messages`)).map((m) => m.ident),
      ['z'],
    );
    const tooSmall = await call('DELETE', `/gw/channels/${id}/messages?data=${encodeURIComponent('{"delete_key":1}')}`);
    assert.equal(tooSmall.status, 400);
  });

  test('style B across several channels merges by server.timestamp', async () => {
    const a = freshChannel();
    const b = freshChannel();
    sandbox.inject(a, [
      { ident: 'a1', 'server.timestamp': 100 },
      { ident: 'a2', 'server.timestamp': 300 },
    ]);
    sandbox.inject(b, [{ ident: 'b1', 'server.timestamp': 200 }]);
    const merged = await call('GET', `/gw/channels/${a},${b}/messages?data=${encodeURIComponent('{"from":1}')}`);
    assert.deepEqual(
      results(merged).map((m) => m.ident),
      ['a1', 'b1', 'a2'],
    );
    const multiKey = await call('GET', `/gw/channels/${a},${b}/messages?data=${encodeURIComponent('{"curr_key":0}')}`);
    assert.equal(multiKey.status, 400, 'curr_key reads one channel at a time');
  });
});

describe('the sandbox control API', () => {
  test('inject validates the whole batch and stores nothing when one message is bad', async () => {
    const id = freshChannel();
    const bad = await call('POST', `/sandbox/channels/${id}/messages`, { body: JSON.stringify([{ ident: 'ok' }, { speed: 5 }]) });
    assert.equal(bad.status, 400);
    assert.match(reasons(bad), /message 2 has no "ident"/);
    const slash = await call('POST', `/sandbox/channels/${id}/messages`, { body: JSON.stringify([{ ident: 'a/b' }]) });
    assert.match(reasons(slash), /#, \+, \//);
    assert.equal(sandbox.store.channel(id).log.size, 0);
    const good = await call('POST', `/sandbox/channels/${id}/messages`, { body: JSON.stringify([{ ident: 'ok', timestamp: 5 }]) });
    assert.deepEqual(
      results(good).map((r) => r.key),
      [1],
    );
    assert.equal((await call('POST', '/sandbox/channels/99999/messages', { body: '[]' })).status, 404);
  });

  test('faults over HTTP: 429 with Retry-After, then a normal answer; the control API is never faulted', async () => {
    const added = await call('POST', '/sandbox/faults', { body: JSON.stringify({ kind: '429', count: 1, retryAfter: 2, match: '/gw/streams' }) });
    assert.equal(added.status, 200);
    assert.equal((await call('GET', '/sandbox/info')).status, 200);
    const limited = await call('GET', '/gw/streams/all');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '2');
    assert.equal((await call('GET', '/gw/streams/all')).status, 200);
    assert.equal((await call('POST', '/sandbox/faults', { body: '{"kind":"teapot"}' })).status, 400);
    await call('POST', '/sandbox/faults', { body: '{"kind":"500","count":5}' });
    await call('DELETE', '/sandbox/faults');
    assert.equal((await call('GET', '/gw/streams/all')).status, 200, 'cleared faults do not fire');
  });

  test('info, simulation control and MQTT drop', async () => {
    const info = results(await call('GET', '/sandbox/info'))[0] as Record<string, unknown>;
    assert.equal(info.rest_url, sandbox.restUrl);
    assert.equal(info.mqtt_url, sandbox.mqttUrl);
    assert.ok((info.channels as { id: number }[]).some((c) => c.id === 1001));
    const sim = results(await call('POST', '/sandbox/simulation', { body: '{"rateHz":4}' }))[0] as Record<string, unknown>;
    assert.deepEqual([sim.rateHz, sim.running], [4, false]);
    assert.equal((await call('POST', '/sandbox/simulation', { body: '{"rateHz":-1}' })).status, 400);
    const dropped = await call('POST', '/sandbox/mqtt/drop-clients');
    assert.equal(typeof (results(dropped)[0] as { dropped: unknown }).dropped, 'number');
  });
});
