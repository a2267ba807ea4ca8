// RestSource reading by time (`from` on server.timestamp), falling back from key-based reading, and
// the buffer fill check, against the scripted fake flespi over a real socket.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import type { FlespiMessage } from '../../src/core/message';
import { RestSource, fingerprint, type RestSourceOptions } from '../../src/core/sources/rest';
import { bufferAnswer, startFakeFlespi, type FakeAnswer, type FakeFlespi, type FakeRequest } from '../support/fakeFlespi';
import { memoryLogger, type MemoryLogger } from '../support/logger';
import { numbered, seqs } from '../receiver/helpers';

const CHANNEL = 55;
const MESSAGES = `/gw/channels/${CHANNEL}/messages`;
const ITEM = `/gw/channels/${CHANNEL}`;
const REFUSED: FakeAnswer = { status: 400, body: { errors: [{ code: 2, reason: 'unknown parameter "curr_key"' }] } };

interface Setup {
  server: FakeFlespi;
  log: MemoryLogger;
  source: RestSource;
}

async function setup(t: TestContext, options: Partial<RestSourceOptions> = {}): Promise<Setup> {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  const log = memoryLogger();
  const client = new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url });
  // The buffer check is answered "nothing to say" unless a test scripts it.
  server.on('GET', ITEM, { body: { result: [{ id: CHANNEL }] } });
  const source = new RestSource({ client, channelId: CHANNEL, timeout: 1, idlePollMs: 30, log, ...options });
  t.after(() => source.close());
  return { server, log, source };
}

/** Messages `first`.. with these server.timestamp values. */
function stamped(first: number, stamps: number[]): FlespiMessage[] {
  return stamps.map((stamp, i) => ({ ...numbered(first + i, 1)[0]!, 'server.timestamp': stamp }));
}

/** Answers a read by time from `buffer` (the live array): messages stamped ≥ `from`, at most `count`; a key-based poll is refused. */
function timeReader(buffer: FlespiMessage[]) {
  return (r: FakeRequest): FakeAnswer => {
    if (r.data?.curr_key !== undefined) return REFUSED;
    const from = typeof r.data?.from === 'number' ? r.data.from : 0;
    const count = typeof r.data?.count === 'number' ? r.data.count : Infinity;
    return { body: { result: buffer.filter((m) => (m['server.timestamp'] as number) >= from).slice(0, count) } };
  };
}

function reads(server: FakeFlespi): Record<string, unknown>[] {
  return server.requestsTo('GET', MESSAGES).map((r) => r.data ?? {});
}

const signal = () => new AbortController().signal;

test('read "time": from the last stamp handed out, skipping what was handed out at it; a page all seen grows, then an idle wait; checkpoints hold both positions', async (t) => {
  const buffer = stamped(1, [100, 101, 101]);
  const { server, log, source } = await setup(t, { read: 'time', limitCount: 2 });
  server.on('GET', MESSAGES, timeReader(buffer));
  await source.open(undefined);
  assert.equal(source.reading, 'time');
  assert.deepEqual(log.at('info'), ['reading channel 55 by time (server.timestamp), without long-poll']);
  assert.deepEqual(log.at('warn'), []);

  const first = await source.next(signal());
  assert.deepEqual(seqs(first.messages), [1, 2]);
  assert.deepEqual(source.checkpointAfter(first), { currKey: 0, time: 101, seen: [fingerprint(buffer[1]!)] });
  const second = await source.next(signal());
  assert.deepEqual(seqs(second.messages), [3]);
  assert.deepEqual(source.checkpointAfter(second), { currKey: 0, time: 101, seen: [fingerprint(buffer[1]!), fingerprint(buffer[2]!)] });
  assert.equal(second.seq, first.seq + 1);

  // Nothing new: the page of 2 holds only messages seen at 101, so the next read asks for 4; that
  // finds nothing new either, and the source waits before reading again.
  const third = source.next(signal());
  while (reads(server).length < 5) await new Promise((resolve) => setTimeout(resolve, 5));
  buffer.push(...stamped(4, [102, 103]));
  const batch = await third;
  assert.deepEqual(seqs(batch.messages), [4, 5]);
  assert.deepEqual(source.checkpointAfter(batch), { currKey: 0, time: 103, seen: [fingerprint(buffer[4]!)] });
  const asked = reads(server);
  assert.deepEqual(asked.slice(0, 4), [
    { from: 0, count: 2 },
    { from: 101, count: 2 },
    { from: 101, count: 2 },
    { from: 101, count: 4 },
  ]);
  assert.ok(
    asked.slice(4).every((d) => d.from === 101 && d.count === 4),
    JSON.stringify(asked),
  );
  // A batch resets the page to limitCount.
  const last = source.next(signal());
  while (reads(server).length < asked.length + 1) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(reads(server).at(-1), { from: 103, count: 2 });
  buffer.push(...stamped(6, [104]));
  assert.deepEqual(seqs((await last).messages), [6]);
  assert.equal(server.requestsTo('GET', MESSAGES).filter((r) => r.data?.curr_key !== undefined).length, 0, 'never a key-based read');
});

test('read "time": messages without a stamp are handed out as they come; the position only moves on finite stamps', async (t) => {
  const { server, source } = await setup(t, { read: 'time' });
  const bare = numbered(1, 1);
  const stampedOne = stamped(2, [50]);
  // 1e999 is Infinity once parsed: not a position to read from.
  server.on(
    'GET',
    MESSAGES,
    { body: { result: [...bare, ...stampedOne] } },
    { body: `{"result":[{"test.seq":3,"server.timestamp":1e999}]}` },
    { body: { result: [] } },
  );
  await source.open({ currKey: 7, time: 40, seen: ['x'] });
  const first = await source.next(signal());
  assert.deepEqual(seqs(first.messages), [1, 2]);
  assert.deepEqual(source.checkpointAfter(first), { currKey: 7, time: 50, seen: [fingerprint(stampedOne[0]!)] });
  const second = await source.next(signal());
  assert.deepEqual(seqs(second.messages), [3]);
  assert.deepEqual(source.checkpointAfter(second), { currKey: 7, time: 50, seen: [fingerprint(stampedOne[0]!)] });
  assert.deepEqual(reads(server).slice(0, 2), [
    { from: 40, count: 1000 },
    { from: 50, count: 1000 },
  ]);
});

test('a checkpoint with a time resumes there and skips exactly the messages it saw at that stamp', async (t) => {
  const buffer = stamped(1, [10, 20, 20, 20]);
  const { server, log, source } = await setup(t, { read: 'time' });
  server.on('GET', MESSAGES, timeReader(buffer));
  await source.open({ currKey: 0, time: 20, seen: [fingerprint(buffer[1]!)] });
  assert.deepEqual(log.at('info'), ['reading channel 55 by time (server.timestamp), without long-poll; from server.timestamp 20']);
  const batch = await source.next(signal());
  assert.deepEqual(seqs(batch.messages), [3, 4]);
  assert.deepEqual(source.checkpointAfter(batch), { currKey: 0, time: 20, seen: buffer.slice(1).map(fingerprint) });
  assert.deepEqual(reads(server)[0], { from: 20, count: 1000 });
});

test('auto: a key-based read refused with a 400 is tried once by time; when that works the source says so once (warn) and reads by time from the key position it had', async (t) => {
  const buffer = stamped(1, [5, 6, 7]);
  const { server, log, source } = await setup(t, { limitCount: 2 });
  server.on('GET', MESSAGES, timeReader(buffer));
  await source.open({ currKey: 9, time: 5, seen: [] });
  assert.equal(source.reading, 'key');
  const batch = await source.next(signal());
  assert.equal(source.reading, 'time');
  assert.deepEqual(seqs(batch.messages), [1, 2]);
  assert.deepEqual(source.checkpointAfter(batch), { currKey: 9, time: 6, seen: [fingerprint(buffer[1]!)] });
  const asked = reads(server);
  assert.equal(asked[0]!.curr_key, 9);
  assert.deepEqual(asked.slice(1, 3), [
    { from: 5, count: 2 },
    { from: 5, count: 2 },
  ]);
  assert.equal(log.at('warn').length, 1);
  assert.match(
    log.at('warn')[0]!,
    /^flespi refused reading channel 55 by key \(flespi rejected the request parameters \(400 Bad Request: unknown parameter "curr_key"\) on GET channel 55 at .*\); reading it by time \(server\.timestamp\) from now on, without long-poll; from server\.timestamp 5$/,
  );
  assert.deepEqual(log.at('info'), []);
  assert.deepEqual(seqs((await source.next(signal())).messages), [3]);
  assert.equal(log.at('warn').length, 1, 'said once');
});

test('auto: the switch says when a key-only checkpoint makes the buffer be read again, and that "delete" stops working', async (t) => {
  const buffer = stamped(1, [5]);
  const { server, log, source } = await setup(t, { delete: true });
  server.on('GET', MESSAGES, timeReader(buffer));
  await source.open({ currKey: 4 });
  const batch = await source.next(signal());
  assert.deepEqual(seqs(batch.messages), [1]);
  assert.equal(log.at('warn').length, 1);
  assert.match(
    log.at('warn')[0]!,
    /from now on, without long-poll; the checkpoint holds only a key, so the buffer is read again from its oldest message \(handlers get those messages again\); "delete" needs key-based reading: messages now stay in the buffer until messages_ttl$/,
  );
  // Reading by time has no key to delete up to: acknowledging deletes nothing.
  await source.ack(batch);
  assert.equal(server.requestsTo('DELETE', MESSAGES).length, 0);
  assert.throws(() => source.checkpointAfter(batch), /did not come from this RestSource/, 'an acknowledged batch is forgotten');
  assert.deepEqual(reads(server)[1], { from: 0, count: 1000 });
});

test('a checkpoint at key 0 without a time, or with a time of 0, is not "key only": the switch adds no note', async (t) => {
  for (const checkpoint of [{ currKey: 0 }, { currKey: 5, time: 0, seen: [] }]) {
    const { server, log, source } = await setup(t);
    server.on('GET', MESSAGES, timeReader(stamped(1, [5])));
    await source.open(checkpoint);
    await source.next(signal());
    assert.match(log.at('warn')[0]!, /reading it by time \(server\.timestamp\) from now on, without long-poll$/, JSON.stringify(checkpoint));
  }
});

test('auto: messages without a next_key of which only some carry a stamp are refused as malformed, with no read by time', async (t) => {
  const { server, log, source } = await setup(t);
  server.on('GET', MESSAGES, (r) =>
    r.data?.curr_key !== undefined ? { body: { result: [...stamped(1, [5]), ...numbered(2, 1)] } } : timeReader(stamped(1, [5]))(r),
  );
  await source.open(undefined);
  await assert.rejects(
    source.next(signal()),
    (e: unknown) => e instanceof FlespiError && e.kind === 'malformed' && /without a usable next_key/.test(e.message),
  );
  assert.equal(reads(server).length, 1);
  assert.equal(source.reading, 'key');
  assert.deepEqual(log.at('warn'), []);
});

test('reading by time: a message older than the position (a server ignoring `from`) is not handed out again; a checkpoint time without `seen` starts with none seen', async (t) => {
  const { server, source } = await setup(t, { read: 'time' });
  const old = stamped(1, [10]);
  const fresh = stamped(2, [20, 21]);
  server.on('GET', MESSAGES, { body: { result: [...old, ...fresh] } }, { body: { result: [] } });
  await source.open({ currKey: 3, time: 20 });
  const batch = await source.next(signal());
  assert.deepEqual(seqs(batch.messages), [2, 3]);
  assert.deepEqual(source.checkpointAfter(batch), { currKey: 3, time: 21, seen: [fingerprint(fresh[1]!)] });

  const other = await setup(t, { read: 'time' });
  const same = stamped(1, [20]);
  other.server.on('GET', MESSAGES, { body: { result: same } }, { body: { result: [] } });
  await other.source.open({ currKey: 0, time: 20 });
  const first = await other.source.next(signal());
  assert.deepEqual(other.source.checkpointAfter(first), { currKey: 0, time: 20, seen: [fingerprint(same[0]!)] });
});

test('reading by key messages without stamps: the time position stays empty (time 0, nothing seen)', async (t) => {
  const { server, source } = await setup(t);
  server.on('GET', MESSAGES, (r) => bufferAnswer(numbered(1, 2), r));
  await source.open(undefined);
  const batch = await source.next(signal());
  assert.deepEqual(source.checkpointAfter(batch), { currKey: 3, time: 0, seen: [] });
});

test('a fingerprint is 22 URL-safe characters, the same for equal messages and different for different ones', () => {
  const a = fingerprint({ ident: 'x', 'server.timestamp': 5, v: 1 });
  assert.match(a, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(fingerprint({ ident: 'x', 'server.timestamp': 5, v: 1 }), a);
  assert.notEqual(fingerprint({ ident: 'x', 'server.timestamp': 5, v: 2 }), a);
});

test('auto: when the read by time fails or returns unstamped messages, the key-based error stands, and the source does not try again', async (t) => {
  const { server, log, source } = await setup(t);
  server.on('GET', MESSAGES, (r) => (r.data?.curr_key !== undefined ? REFUSED : { status: 500, body: { errors: [{ reason: 'history down' }] } }));
  await source.open(undefined);
  for (let i = 0; i < 2; i++) {
    const error = await source.next(signal()).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof FlespiError && error.kind === 'bad-request' && /unknown parameter "curr_key"/.test(error.message), String(error));
  }
  assert.deepEqual(
    reads(server).map((d) => ('curr_key' in d ? 'key' : 'time')),
    ['key', 'time', 'key'],
  );
  assert.equal(source.reading, 'key');
  assert.equal(log.at('debug').length, 1);
  assert.match(
    log.at('debug')[0]!,
    /^channel 55: reading by time does not work either \(flespi server error \(500 Internal Server Error: history down\) on GET channel 55 at .*\)$/,
  );

  const other = await setup(t);
  other.server.on('GET', MESSAGES, (r) => (r.data?.curr_key !== undefined ? REFUSED : { body: { result: [...stamped(1, [5]), ...numbered(2, 1)] } }));
  await other.source.open(undefined);
  await assert.rejects(other.source.next(signal()), /unknown parameter "curr_key"/);
  assert.deepEqual(
    reads(other.server).map((d) => ('curr_key' in d ? 'key' : 'time')),
    ['key', 'time'],
    'the key-based error comes straight after the probe',
  );
  assert.equal(other.source.reading, 'key');
  assert.deepEqual(other.log.at('warn'), []);
});

test('read "key": a refused key-based read is an error, never a read by time', async (t) => {
  const { server, source } = await setup(t, { read: 'key' });
  server.on('GET', MESSAGES, timeReader(stamped(1, [5])));
  await source.open(undefined);
  await assert.rejects(source.next(signal()), (e: unknown) => e instanceof FlespiError && e.kind === 'bad-request');
  assert.equal(reads(server).length, 1);
  assert.equal(source.reading, 'key');
  // Other errors are not refusals: no read by time either.
  const other = await setup(t);
  other.server.on('GET', MESSAGES, { status: 404, body: { errors: [{ reason: 'no such channel' }] } }, timeReader(stamped(1, [5])));
  await other.source.open(undefined);
  await assert.rejects(other.source.next(signal()), (e: unknown) => e instanceof FlespiError && e.kind === 'not-found');
  assert.equal(reads(other.server).length, 1);
});

test('auto: stamped messages without a next_key switch to reading by time', async (t) => {
  const buffer = stamped(1, [5, 6]);
  const { server, log, source } = await setup(t);
  server.on('GET', MESSAGES, (r) => (r.data?.curr_key !== undefined ? { body: { result: buffer } } : timeReader(buffer)(r)));
  await source.open(undefined);
  const batch = await source.next(signal());
  assert.deepEqual(seqs(batch.messages), [1, 2]);
  assert.equal(source.reading, 'time');
  assert.match(log.at('warn')[0]!, /^flespi refused reading channel 55 by key \(flespi returned 2 messages of channel 55 without a usable next_key/);
});

test('reading by key keeps the time position too: the newest stamp and what was handed out at it', async (t) => {
  const buffer = [...stamped(1, [5, 7, 7]), ...numbered(4, 1), ...stamped(5, [7, 6])];
  const { server, source } = await setup(t, { limitCount: 3 });
  server.on('GET', MESSAGES, (r) => bufferAnswer(buffer, r, { limit: 3 }));
  await source.open(undefined);
  const first = await source.next(signal());
  assert.deepEqual(source.checkpointAfter(first), { currKey: 4, time: 7, seen: [fingerprint(buffer[1]!), fingerprint(buffer[2]!)] });
  const second = await source.next(signal());
  assert.deepEqual(source.checkpointAfter(second), { currKey: 7, time: 7, seen: [buffer[1]!, buffer[2]!, buffer[4]!].map(fingerprint) });
  // The defaults of a poll: 1000 messages, the timeout given, no limit_size.
  const plain = await setup(t, { timeout: undefined });
  plain.server.on('GET', MESSAGES, (r) => bufferAnswer(buffer, r));
  await plain.source.open(undefined);
  await plain.source.next(signal());
  assert.deepEqual(reads(plain.server)[0], { curr_key: 0, limit_count: 1000, timeout: 20 });
});

test('reading by time waits idlePollMs (2 s by default) after a read with nothing new; an abort ends the wait', async (t) => {
  const { server, source } = await setup(t, { read: 'time', idlePollMs: undefined });
  server.on('GET', MESSAGES, { body: { result: [] } });
  await source.open(undefined);
  const controller = new AbortController();
  const pending = source.next(controller.signal);
  while (reads(server).length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
  const [a, b] = server.requestsTo('GET', MESSAGES);
  assert.ok(b!.at - a!.at >= 1900, `waited ${b!.at - a!.at} ms`);
  const aborted = Date.now();
  controller.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  assert.ok(Date.now() - aborted < 1000, 'the wait ends with the abort');

  // A signal aborted already: nothing is asked at all.
  const quiet = await setup(t);
  await quiet.source.open(undefined);
  const gone = new AbortController();
  gone.abort();
  await assert.rejects(quiet.source.next(gone.signal), { name: 'AbortError' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(quiet.server.requests.length, 0);
});

/** Calls next() once per answer of the buffer check and waits for each check to be answered and read. */
async function checkEach(server: FakeFlespi, source: RestSource, checks: number): Promise<void> {
  for (let i = 1; i <= checks; i++) {
    await source.next(signal());
    while (server.requestsTo('GET', ITEM).filter((r) => r.bytesSent > 0).length < i) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}

test('the buffer fill: a warning once it reaches 80% of bufferLimitBytes, again only after it fell below 72%', async (t) => {
  const { server, log, source } = await setup(t, { bufferLimitBytes: 1000 * 1024, bufferCheckMs: 0, limitCount: 1 });
  server.on('GET', MESSAGES, (r) => bufferAnswer(numbered(1, 50), r, { limit: 1 }));
  const sizes = [790, 800, 790, 800, 700, 1000, 'n/a'];
  server.on('GET', ITEM, ...sizes.map((kb) => ({ body: { result: [{ id: CHANNEL, messages_size: kb, blocked: 0 }] } })));
  await source.open(undefined);
  await checkEach(server, source, sizes.length);
  const check = server.requestsTo('GET', ITEM)[0]!;
  assert.equal(check.query.get('fields'), 'id,messages_size,blocked');
  const tail =
    ': with "delete" off only messages_ttl empties it, and flespi blocks a channel whose buffer is full; turn on "delete" if this receiver is the channel\'s only reader, or shorten messages_ttl';
  assert.deepEqual(log.at('warn'), [`channel 55's buffer holds 0.8 MB, 80% of 1.0 MB${tail}`, `channel 55's buffer holds 1.0 MB, 100% of 1.0 MB${tail}`]);
});

test('the buffer fill: the default limit is the free plan\'s 100 MB, checked every 10 minutes; reading by time with "delete" says why it cannot delete', async (t) => {
  const { server, log, source } = await setup(t, { read: 'time', delete: true, limitCount: 1 });
  server.on('GET', MESSAGES, timeReader(stamped(1, [1, 2, 3, 4])));
  server.on('GET', ITEM, { body: { result: [{ id: CHANNEL, messages_size: 90 * 1024 }] } });
  await source.open(undefined);
  await checkEach(server, source, 1);
  await source.next(signal());
  await source.next(signal());
  assert.equal(server.requestsTo('GET', ITEM).length, 1, 'one check in 10 minutes');
  assert.deepEqual(log.at('warn'), [
    "channel 55's buffer holds 90.0 MB, 90% of 100.0 MB (a free account's buffer; commercial plans hold more: set bufferLimitMB): reading by time cannot delete, so only messages_ttl empties it, and flespi blocks a channel whose buffer is full; shorten messages_ttl",
  ]);
});

test('the buffer fill is not checked while "delete" empties the buffer (reading by key)', async (t) => {
  const { server, source } = await setup(t, { delete: true, bufferCheckMs: 0 });
  server.on('GET', MESSAGES, (r) => bufferAnswer(numbered(1, 3), r, { limit: 1 }));
  server.on('DELETE', MESSAGES, { body: { result: [] } });
  await source.open(undefined);
  for (let i = 0; i < 3; i++) await source.ack(await source.next(signal()));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(server.requestsTo('GET', ITEM).length, 0);
  assert.deepEqual(
    server.requestsTo('DELETE', MESSAGES).map((r) => r.data),
    [{ delete_key: 2 }, { delete_key: 3 }, { delete_key: 4 }],
  );
});

test('a blocked channel is reported with its code (4: storage); a check refused with a 400 is not asked again, other failures are', async (t) => {
  const { server, log, source } = await setup(t, { bufferCheckMs: 0, limitCount: 1 });
  server.on('GET', MESSAGES, (r) => bufferAnswer(numbered(1, 50), r, { limit: 1 }));
  server.on(
    'GET',
    ITEM,
    { body: { result: [{ id: CHANNEL, blocked: 4 }] } },
    { body: { result: [{ id: CHANNEL, blocked: 2 }] } },
    { body: { result: [{ id: CHANNEL, blocked: 0 }] } },
    { body: { result: [] } },
    { status: 500, body: { errors: [{ reason: 'busy' }] } },
  );
  await source.open(undefined);
  await checkEach(server, source, 5);
  const tail =
    ': a blocked channel takes no messages from devices; free its buffer ("delete", or a shorter messages_ttl) and check the account\'s limits at https://flespi.io/#/panel';
  assert.deepEqual(log.at('warn'), [
    `flespi reports channel 55 as blocked (code 4: storage, e.g. a full buffer)${tail}`,
    `flespi reports channel 55 as blocked (code 2)${tail}`,
  ]);
  assert.equal(log.at('debug').length, 1);
  assert.match(
    log.at('debug')[0]!,
    /^channel 55: cannot check the buffer's fill \(flespi server error \(500 Internal Server Error: busy\) on GET channel 55 at .*\)$/,
  );
  await source.next(signal());
  while (server.requestsTo('GET', ITEM).length < 6) await new Promise((resolve) => setTimeout(resolve, 5));

  const refused = await setup(t, { bufferCheckMs: 0, limitCount: 1 });
  refused.server.on('GET', MESSAGES, (r) => bufferAnswer(numbered(1, 50), r, { limit: 1 }));
  refused.server.on('GET', ITEM, { status: 400, body: { errors: [{ code: 2, reason: 'unknown field "messages_size"' }] } });
  await refused.source.open(undefined);
  await refused.source.next(signal());
  while (refused.log.at('debug').length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const asked = refused.server.requestsTo('GET', ITEM).length;
  for (let i = 0; i < 3; i++) await refused.source.next(signal());
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(refused.server.requestsTo('GET', ITEM).length, asked, 'not asked again');
});
