// The checkpoint stores: what a checkpoint file may hold and how it is read back, how saves are
// written (atomically, in order), and that the memory store hands out copies.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/options';
import { FileCheckpointStore, MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'checkpoint-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('loading: no file is a first run; a file that cannot be read, is not JSON or has no valid currKey is refused, naming it and what to do', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'cp.json');
  const store = new FileCheckpointStore(path);
  assert.equal(await store.load(), undefined);

  await mkdir(path);
  await assert.rejects(store.load(), (e: unknown) => !(e instanceof ConfigError) && (e as NodeJS.ErrnoException).code === 'EISDIR');
  await rm(path, { recursive: true });

  await writeFile(path, '{"currKey": 4');
  await assert.rejects(
    store.load(),
    (e: unknown) =>
      e instanceof ConfigError && e.message === `checkpoint file ${path} is not valid JSON: fix it, or delete it to start from the beginning of the channel`,
  );
  for (const text of ['null', '{}', '{"currKey":"4"}', '{"currKey":1.5}', '{"currKey":-1}', '[4]']) {
    await writeFile(path, text);
    await assert.rejects(
      store.load(),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `checkpoint file ${path} has no valid "currKey": fix it, or delete it to start from the beginning of the channel`,
      text,
    );
  }
  await writeFile(path, '{"currKey":0}');
  assert.deepEqual(await store.load(), { currKey: 0 });
});

test('loading: the time position is kept when its time is a finite number ≥ 0, with only the strings of `seen`; savedAt only as a string', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'cp.json');
  const store = new FileCheckpointStore(path);
  const cases: [string, object][] = [
    [
      '{"currKey":7,"time":12.5,"seen":["a",3,null,"b"],"savedAt":"2026-01-01T00:00:00.000Z"}',
      { currKey: 7, time: 12.5, seen: ['a', 'b'], savedAt: '2026-01-01T00:00:00.000Z' },
    ],
    ['{"currKey":7,"time":0,"seen":"a"}', { currKey: 7, time: 0, seen: [] }],
    ['{"currKey":7,"time":5}', { currKey: 7, time: 5, seen: [] }],
    ['{"currKey":7,"time":-1,"seen":["a"],"savedAt":5}', { currKey: 7 }],
    ['{"currKey":7,"time":"5","seen":["a"]}', { currKey: 7 }],
    ['{"currKey":7,"time":1e999,"seen":["a"]}', { currKey: 7 }],
  ];
  for (const [text, expected] of cases) {
    await writeFile(path, text);
    assert.deepEqual(await store.load(), expected, text);
  }
});

test('saving: an indented JSON file (currKey, the time position when there is one, savedAt), written through a temporary file, in a directory made for it', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'nested', 'deeper', 'cp.json');
  const store = new FileCheckpointStore(path);
  await store.save({ currKey: 3, time: 9, seen: ['x'], savedAt: '2026-02-02T00:00:00.000Z' });
  assert.equal(await readFile(path, 'utf8'), JSON.stringify({ currKey: 3, time: 9, seen: ['x'], savedAt: '2026-02-02T00:00:00.000Z' }, null, 2) + '\n');
  await store.save({ currKey: 4, time: 10 });
  const second = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  assert.deepEqual([second.currKey, second.time, second.seen], [4, 10, []], 'a time without seen is saved with none seen');
  const before = Date.now();
  await store.save({ currKey: 5 });
  const saved = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(saved), ['currKey', 'savedAt']);
  assert.equal(saved.currKey, 5);
  const at = Date.parse(saved.savedAt as string);
  assert.ok(at >= before - 1000 && at <= Date.now() + 1000, `savedAt ${String(saved.savedAt)} is now`);
  assert.deepEqual(await readdir(join(dir, 'nested', 'deeper')), ['cp.json'], 'no temporary file left');
});

test('saving: saves called together land in order (the last one stays); a failed save leaves no temporary file and does not block the next', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'cp.json');
  const store = new FileCheckpointStore(path);
  await Promise.all(Array.from({ length: 20 }, (_, i) => store.save({ currKey: i + 1 })));
  assert.equal((await store.load())?.currKey, 20);

  // A directory where the file should be: the rename fails.
  const blocked = join(dir, 'blocked.json');
  await mkdir(join(blocked, 'inside'), { recursive: true });
  const failing = new FileCheckpointStore(blocked);
  const first = failing.save({ currKey: 1 });
  const second = failing.save({ currKey: 2 });
  await assert.rejects(first);
  await assert.rejects(second, 'the second save ran (and failed the same way) after the first failed');
  assert.deepEqual((await readdir(dir)).sort(), ['blocked.json', 'cp.json']);
  await rm(blocked, { recursive: true });
  await failing.save({ currKey: 3 });
  assert.equal((await failing.load())?.currKey, 3);
});

test('the memory store hands out copies: changing a loaded or saved checkpoint does not change the store', async () => {
  const store = new MemoryCheckpointStore({ currKey: 1 });
  const loaded = await store.load();
  assert.deepEqual(loaded, { currKey: 1 });
  loaded!.currKey = 50;
  assert.deepEqual(await store.load(), { currKey: 1 });
  const saved = { currKey: 2, time: 3 };
  await store.save(saved);
  saved.currKey = 77;
  assert.deepEqual(await store.load(), { currKey: 2, time: 3 });
  assert.equal(await new MemoryCheckpointStore().load(), undefined);
});
