// The JSON-lines sinks: stdout (CLI) and the extension's NDJSON file. A message nested deeper than
// JSON.stringify can go is written whole; one that JSON cannot represent is rejected with the reason
// (ctx.reject) and the rest of the batch is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { classifyFailure } from '../../src/core/errors';
import type { Handler } from '../../src/core/handler';
import { StdoutHandler } from '../../src/core/handlers/stdout';
import type { FlespiMessage } from '../../src/core/message';
import { NdjsonFileHandler } from '../../src/extension/sinks/ndjsonFile';
import { depthOf, nested, recordingContext } from '../support/rejects';

function poisonBatch(): FlespiMessage[] {
  const cyclic: FlespiMessage = { ident: 'cyclic', seq: 3 };
  cyclic.self = [cyclic];
  return [
    { ident: 'a', seq: 0 },
    { ident: 'deep', seq: 1, deep: nested(6000) },
    { ident: 'big', seq: 2, big: (10n ** 20n) as unknown as number },
    cyclic,
    { ident: 'b', seq: 4 },
  ];
}

const EXPECTED_REASONS = [
  '2: the message cannot be written as JSON: it holds a BigInt, which JSON cannot represent',
  '3: the message cannot be written as JSON: it refers to itself (a circular structure)',
];

/** Splits pretty-printed output into its JSON documents (each starts with "{" at the start of a line). */
function documents(text: string, pretty: boolean): unknown[] {
  const parts = pretty ? text.split(/\n(?=\{)/) : text.split('\n');
  return parts.filter((p) => p.trim() !== '').map((p) => JSON.parse(p) as unknown);
}

async function check(handler: Handler, read: () => Promise<string>, pretty: boolean): Promise<void> {
  const ctx = recordingContext();
  await handler.handle(poisonBatch(), ctx);
  assert.deepEqual(ctx.reasons(), EXPECTED_REASONS);
  assert.ok([...ctx.rejected.values()].every((r) => classifyFailure(r) === 'undeliverable'));
  const written = documents(await read(), pretty) as FlespiMessage[];
  assert.deepEqual(
    written.map((m) => m.seq),
    [0, 1, 4],
    'the others are written, in order',
  );
  assert.equal(depthOf(written[1]!.deep), 6000, 'the deep message is written whole');
  assert.match(handler.health().detail ?? '', /^3 messages written/);
}

for (const pretty of [false, true]) {
  test(`stdout${pretty ? ' (pretty)' : ''}: 6,000 levels of nesting are written; a BigInt or a cycle is rejected with the reason, the rest written`, async () => {
    const output = new PassThrough();
    let text = '';
    output.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    await check(new StdoutHandler({ output, pretty }), async () => text, pretty);
  });

  test(`NDJSON file sink${pretty ? ' (pretty)' : ''}: the same`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ndjson-sink-'));
    try {
      const file = join(dir, 'out', 'sink.ndjson');
      const handler = new NdjsonFileHandler(file, pretty, 'file');
      await handler.start();
      await check(handler, () => readFile(file, 'utf8'), pretty);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('NDJSON file sink: a file that cannot be written is a TransientError (the disk, not the messages)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ndjson-sink-'));
  try {
    const handler = new NdjsonFileHandler(dir, false, 'file'); // a folder where the file should be
    const error = await handler.handle([{ ident: 'a' }], recordingContext()).then(
      () => assert.fail('appending to a folder succeeded'),
      (e: Error) => e,
    );
    assert.equal(classifyFailure(error), 'transient');
    assert.match(error.message, /^cannot append to .*: EISDIR/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
