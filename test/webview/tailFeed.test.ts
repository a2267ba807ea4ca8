import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import type { FlespiMessage } from '../../src/core/message';
import { PageWatch, SendAllowance, TailFeed } from '../../src/extension/tail/tailFeed';
import { TailModel } from '../../src/extension/tail/tailModel';
import type { HostMessage } from '../../src/shared/tailProtocol';

function setup(bufferSize = 100, maxPerBatch = 20) {
  const model = new TailModel({ bufferSize, maxPerBatch });
  const posted: HostMessage[] = [];
  const feed = new TailFeed(
    model,
    (m) => posted.push(m),
    () => ({ type: 'init', channel: { id: 7, name: 'c' }, columns: ['ident'], bufferSize, filter: '', paused: model.isPaused, connectionLabel: 'sandbox' }),
  );
  const add = (from: number, to: number) => {
    const list: FlespiMessage[] = [];
    for (let n = from; n <= to; n++) list.push({ n });
    model.add(list);
  };
  const ids = (m: HostMessage | undefined) => (m?.type === 'messages' ? m.batch.map((i) => i.message.n) : undefined);
  return { model, feed, posted, add, ids };
}

test('nothing is posted before the webview says ready; ready sends init, state and the buffer', () => {
  const { feed, posted, add, ids } = setup();
  feed.setState('live', 'Live');
  feed.notice('info', 'early');
  add(1, 5);
  feed.tick();
  assert.equal(posted.length, 0);
  feed.ready();
  assert.deepEqual(
    posted.map((m) => m.type),
    ['init', 'state', 'messages'],
  );
  assert.deepEqual(posted[1], { type: 'state', connection: 'live', detail: 'Live' }, 'the latest state, kept while nobody listened');
  const messages = posted[2] as Extract<HostMessage, { type: 'messages' }>;
  assert.equal(messages.reset, true);
  assert.deepEqual(ids(messages), [1, 2, 3, 4, 5]);
  assert.equal(messages.counters.shown, 5);
});

test('one batch per tick, counters only when they change', () => {
  const { feed, posted, add, ids } = setup();
  feed.ready();
  posted.length = 0;
  add(1, 3);
  add(4, 6);
  feed.tick();
  feed.tick();
  assert.equal(posted.length, 1, 'two adds, one batch; an idle tick with unchanged counters posts nothing');
  assert.deepEqual(ids(posted[0]), [1, 2, 3, 4, 5, 6]);
  add(7, 60);
  feed.tick();
  assert.deepEqual(ids(posted[1])?.length, 20, 'capped at maxPerBatch');
  const counters = (posted[1] as Extract<HostMessage, { type: 'messages' }>).counters;
  assert.deepEqual([counters.received, counters.shown, counters.dropped], [60, 26, 34]);
});

test('while hidden nothing is posted; the next ready resends the whole buffer, newest included', () => {
  const { feed, posted, add, ids } = setup(50, 20);
  feed.ready();
  add(1, 10);
  feed.tick();
  feed.detach();
  posted.length = 0;
  add(11, 80);
  feed.tick();
  feed.setState('reconnecting', 'lost');
  feed.notice('info', 'while hidden');
  assert.equal(posted.length, 0);
  feed.ready();
  assert.deepEqual(
    posted.map((m) => m.type),
    ['init', 'state', 'messages'],
  );
  assert.deepEqual(posted[1], { type: 'state', connection: 'reconnecting', detail: 'lost' });
  const resent = ids(posted[2]) ?? [];
  assert.equal(resent.length, 50, 'the whole (bounded) buffer');
  assert.deepEqual([resent[0], resent.at(-1)], [31, 80]);
});

test('paused: ticks send only counters with the pending count; resume sends the newest', () => {
  const { model, feed, posted, add, ids } = setup(100, 20);
  feed.ready();
  posted.length = 0;
  model.pause();
  add(1, 30);
  feed.tick();
  assert.equal(posted.length, 1);
  assert.equal(posted[0].type, 'counters');
  assert.equal((posted[0] as Extract<HostMessage, { type: 'counters' }>).counters.pending, 30);
  model.resume();
  feed.tick();
  assert.deepEqual(
    ids(posted[1]),
    Array.from({ length: 20 }, (_, i) => i + 11),
  );
});

test('send allowance: steady ticks pass the rate, unused allowance carries over up to one second, late ticks catch up', () => {
  const allowance = new SendAllowance(10_000, 0);
  assert.equal(allowance.available(250), 2500, 'an on-time tick: a quarter second of the rate');
  allowance.spend(2500);
  // A lull: this tick had only 500 to send; the rest of its share waits for the burst that follows.
  assert.equal(allowance.available(500), 2500);
  allowance.spend(500);
  assert.equal(allowance.available(750), 4500, 'the unused 2000 carried over');
  allowance.spend(4500);
  // A tick 3 s late (a busy extension host) may send at most one second's worth.
  assert.equal(allowance.available(3750), 10_000);
  allowance.spend(10_000);
  assert.equal(allowance.available(3750), 0, 'nothing more at the same instant');
});

test('send allowance with the feed: a burst of 4000 after a lull is shown whole at 10k msg/s, not cut to 2500', () => {
  const { model, feed, posted, add, ids } = setup(10_000, 2500);
  const allowance = new SendAllowance(10_000, 0);
  const tick = (now: number) => allowance.spend(feed.tick(Math.max(1, allowance.available(now))));
  feed.ready();
  posted.length = 0;
  add(1, 1000);
  tick(250); // 1000 of an allowance of 2500
  add(1001, 5000);
  tick(500); // 4000 pending, allowance 1500 + 2500
  assert.deepEqual(
    posted.map((m) => ids(m)?.length),
    [1000, 4000],
  );
  assert.equal(model.counters().dropped, 0);
});

test('a page that never says ready is loaded again with growing patience, then the user is told; ready or hiding resets it', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const events: string[] = [];
  const watch = new PageWatch(
    { reload: (attempt, waited) => events.push(`reload ${attempt} after ${waited}`), giveUp: (waited) => events.push(`give up after ${waited}`) },
    [100, 200, 400],
  );
  // A page that starts in time: nothing happens.
  watch.loading();
  mock.timers.tick(99);
  watch.started();
  mock.timers.tick(1000);
  assert.deepEqual(events, []);
  // A blank page: two reloads (each new page given more time), then the user is told, once.
  watch.loading();
  mock.timers.tick(100);
  assert.deepEqual(events, ['reload 1 after 100']);
  watch.loading(); // the reload renders a new page
  mock.timers.tick(199);
  assert.equal(events.length, 1);
  mock.timers.tick(1);
  watch.loading();
  mock.timers.tick(400);
  assert.deepEqual(events, ['reload 1 after 100', 'reload 2 after 200', 'give up after 400']);
  watch.loading();
  mock.timers.tick(10_000);
  assert.equal(events.length, 3, 'after giving up, the same page is not reloaded again');
  // Hidden while loading: no reload; shown again, the new page gets every attempt again.
  watch.stop();
  watch.loading();
  watch.stop();
  mock.timers.tick(10_000);
  assert.equal(events.length, 3);
  watch.loading();
  mock.timers.tick(100);
  assert.deepEqual(events.slice(3), ['reload 1 after 100']);
});
