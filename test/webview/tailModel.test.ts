import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlespiMessage } from '../../src/core/message';
import { clipboardText, csvField, csvLines, ndjsonLines } from '../../src/extension/tail/tailExport';
import { escapeHtml, renderTailHtml } from '../../src/extension/tail/tailHtml';
import { TailModel } from '../../src/extension/tail/tailModel';
import type { TailCounters } from '../../src/shared/tailProtocol';

function messages(from: number, to: number): FlespiMessage[] {
  const out: FlespiMessage[] = [];
  for (let n = from; n <= to; n++) out.push({ ident: `dev-${n % 7}`, 'server.timestamp': 1_700_000_000 + n / 1000, n });
  return out;
}

function balanced(c: TailCounters): void {
  assert.equal(c.received, c.shown + c.dropped + c.pending, `received ${c.received} != shown ${c.shown} + dropped ${c.dropped} + pending ${c.pending}`);
}

test('a late flush (a busy host) may take a larger batch, never more than the buffer', () => {
  const model = new TailModel({ bufferSize: 6000, maxPerBatch: 2500 });
  model.add(messages(1, 8000));
  const batch = model.takeBatch(5000);
  assert.equal(batch.length, 5000);
  assert.equal(batch[0].id, 3001);
  model.add(messages(8001, 16_000));
  assert.equal(model.takeBatch(1_000_000).length, 6000, 'capped at the buffer size');
  balanced(model.counters());
});

test('a 10,000-message burst: one batch of the newest 2,500, the rest counted as dropped', () => {
  const model = new TailModel({ bufferSize: 10_000, maxPerBatch: 2500 });
  model.add(messages(1, 10_000));
  assert.equal(model.counters().pending, 10_000);
  const batch = model.takeBatch();
  assert.equal(batch.length, 2500);
  assert.equal(batch[0].id, 7501);
  assert.equal(batch[2499].id, 10_000);
  assert.equal(batch[2499].message.n, 10_000);
  const c = model.counters();
  assert.deepEqual(
    { received: c.received, shown: c.shown, dropped: c.dropped, pending: c.pending },
    { received: 10_000, shown: 2500, dropped: 7500, pending: 0 },
  );
  assert.deepEqual(model.takeBatch(), [], 'nothing is sent twice');
  // The host buffer still holds all of them for forward/copy/export by id.
  assert.equal(model.all().length, 10_000);
  assert.deepEqual(
    model.get([1, 5000, 10_000]).map((i) => i.message.n),
    [1, 5000, 10_000],
  );
});

test('steady flow at the flush cadence: everything is shown, nothing dropped', () => {
  const model = new TailModel({ bufferSize: 1000, maxPerBatch: 250 });
  let shown = 0;
  for (let tick = 0; tick < 40; tick++) {
    model.add(messages(tick * 200 + 1, tick * 200 + 200));
    shown += model.takeBatch().length;
  }
  const c = model.counters();
  assert.equal(c.received, 8000);
  assert.equal(c.shown, 8000);
  assert.equal(shown, 8000);
  assert.equal(c.dropped, 0);
  assert.equal(model.all().length, 1000, 'the buffer is bounded');
  assert.equal(model.all()[0].id, 7001);
});

test('the ring buffer keeps the newest bufferSize; lookups skip ids that fell out', () => {
  const model = new TailModel({ bufferSize: 100 });
  model.add(messages(1, 250));
  const all = model.all();
  assert.equal(all.length, 100);
  assert.equal(all[0].id, 151);
  assert.equal(all[99].id, 250);
  assert.deepEqual(
    model.get([250, 1, 151, 999, 151]).map((i) => i.id),
    [151, 250],
  );
});

test('pause keeps counting; resume sends the newest and counts what did not fit as dropped', () => {
  const model = new TailModel({ bufferSize: 100, maxPerBatch: 50 });
  model.add(messages(1, 10));
  assert.equal(model.takeBatch().length, 10);
  model.pause();
  model.add(messages(11, 310));
  assert.deepEqual(model.takeBatch(), []);
  let c = model.counters();
  assert.equal(c.paused, true);
  assert.equal(c.pending, 300, 'the "N new" while paused');
  assert.equal(c.shown, 10);
  balanced(c);
  model.resume();
  const batch = model.takeBatch();
  assert.deepEqual([batch[0].id, batch.at(-1)?.id, batch.length], [261, 310, 50]);
  c = model.counters();
  assert.deepEqual([c.shown, c.dropped, c.pending, c.paused], [60, 250, 0, false]);
  balanced(c);
});

test('snapshot resends what was settled, and while paused leaves the pending ones pending', () => {
  const model = new TailModel({ bufferSize: 20, maxPerBatch: 10 });
  model.add(messages(1, 5));
  model.takeBatch();
  model.add(messages(6, 8));
  assert.deepEqual(
    model.snapshot().map((i) => i.id),
    [1, 2, 3, 4, 5, 6, 7, 8],
    'pending ones are settled into it',
  );
  assert.equal(model.counters().shown, 8);
  model.pause();
  model.add(messages(9, 12));
  assert.deepEqual(
    model.snapshot().map((i) => i.id),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.equal(model.counters().pending, 4);
  balanced(model.counters());
});

test('counters stay balanced under random adds, flushes, pauses and snapshots', () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const model = new TailModel({ bufferSize: 300, maxPerBatch: 70 });
  let n = 0;
  let sentIds: number[] = [];
  for (let step = 0; step < 3000; step++) {
    const r = random();
    if (r < 0.5) {
      const count = Math.floor(random() * 200);
      model.add(messages(n + 1, n + count));
      n += count;
    } else if (r < 0.8) {
      sentIds = sentIds.concat(model.takeBatch().map((i) => i.id));
    } else if (r < 0.9) {
      if (model.isPaused) model.resume();
      else model.pause();
    } else {
      model.snapshot();
    }
    balanced(model.counters());
  }
  assert.equal(model.counters().received, n);
  for (let i = 1; i < sentIds.length; i++) assert.ok(sentIds[i] > sentIds[i - 1], 'batches go out in order, never twice');
});

test('dedupe skips messages already buffered, whatever their key order', () => {
  const model = new TailModel({ bufferSize: 100 });
  model.add([
    { ident: 'a', 'server.timestamp': 10, v: 1 },
    { ident: 'b', 'server.timestamp': 11, v: 2 },
  ]);
  const added = model.add(
    [
      { v: 2, 'server.timestamp': 11, ident: 'b' },
      { ident: 'c', 'server.timestamp': 12, v: 3 },
      { ident: 'c', 'server.timestamp': 12, v: 3 },
    ],
    { dedupe: true },
  );
  assert.deepEqual(
    added.map((i) => i.message.ident),
    ['c'],
  );
  assert.equal(model.lastServerTimestamp(), 12);
  assert.equal(model.add([{ ident: 'b', 'server.timestamp': 11, v: 2 }]).length, 1, 'live messages are not de-duplicated');
});

test('dedupe never merges distinct messages that share server.timestamp and ident (several parsed from one packet)', () => {
  const model = new TailModel({ bufferSize: 100 });
  model.add([{ ident: 'a', 'server.timestamp': 10, n: 1 }]);
  const added = model.add(
    [
      { ident: 'a', 'server.timestamp': 10, n: 1 },
      { ident: 'a', 'server.timestamp': 10, n: 2 },
      { ident: 'a', 'server.timestamp': 10, n: 3 },
    ],
    { dedupe: true },
  );
  assert.deepEqual(
    added.map((i) => i.message.n),
    [2, 3],
  );
});

test('rate is messages per second over the last 5 s; clear forgets everything', () => {
  let now = 1_000_000;
  const model = new TailModel({ bufferSize: 1000, now: () => now });
  model.add(messages(1, 50));
  now += 1000;
  model.add(messages(51, 100));
  assert.equal(model.counters().rate, 20);
  assert.equal(model.counters().lastMessageAt, now);
  now += 6000;
  assert.equal(model.counters().rate, 0);
  model.clear();
  assert.deepEqual(model.counters(), { received: 0, shown: 0, dropped: 0, rate: 0, lastMessageAt: null, paused: false, pending: 0 });
  assert.equal(model.add(messages(1, 1))[0].id, 1);
});

test('CSV: union of keys as header, RFC 4180 quoting, nested objects flattened, formulas defused', () => {
  const text = [
    ...csvLines([
      { ident: 'a,b', 'position.speed': 5, note: 'say "hi"' },
      { ident: 'line\nbreak', extra: { x: 1, y: { z: true } }, list: [1, 2], cmd: '=HYPERLINK("x")', neg: -5 },
    ]),
  ].join('');
  assert.equal(
    text,
    'ident,position.speed,note,extra.x,extra.y.z,list,cmd,neg\r\n' +
      '"a,b",5,"say ""hi""",,,,,\r\n' +
      '"line\nbreak",,,1,true,"[1,2]","\'=HYPERLINK(""x"")",-5\r\n',
  );
  assert.equal(csvField(null), '');
  assert.equal(csvField('@SUM(1)'), "'@SUM(1)");
});

test('NDJSON and clipboard text round-trip the messages', () => {
  const list = messages(1, 3);
  const lines = [...ndjsonLines(list)];
  assert.equal(lines.length, 3);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l) as unknown),
    list,
  );
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
  assert.deepEqual(JSON.parse(clipboardText([list[0]])), list[0]);
  assert.equal(clipboardText(list), lines.join(''));
});

test('the HTML escapes the title and names only the nonced script', () => {
  const html = renderTailHtml({
    cspSource: 'https://x.vscode-cdn.net',
    nonce: 'abc123',
    scriptUri: 'https://x.vscode-cdn.net/dist/webview/tail.js',
    title: '<script>alert(1)</script>',
  });
  assert.ok(html.includes(`<title>${escapeHtml('<script>alert(1)</script>')}</title>`));
  assert.equal(html.match(/<script/g)?.length, 1);
  assert.ok(html.includes('<script nonce="abc123" src="https://x.vscode-cdn.net/dist/webview/tail.js"></script>'));
  assert.ok(
    html.includes(
      'default-src &#39;none&#39;; img-src https://x.vscode-cdn.net data:; style-src https://x.vscode-cdn.net; script-src &#39;nonce-abc123&#39;; font-src https://x.vscode-cdn.net',
    ),
  );
});
