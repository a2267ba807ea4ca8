// The receiver's small parts at their edges: backoff and abortable waits, the dead-letter stores (memory
// and file), and the checkpoint's owner lock (records, releases, who counts as alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, MAX_TIMER_MS, abortReason, backoffDelay, clampDelay, raceAbort, sleep } from '../../src/core/backoff';
import {
  DeadLetterStoreFullError,
  FileDeadLetterStore,
  MemoryDeadLetterStore,
  deadLetterPathFor,
  type DeadLetter,
  type DeadLetterStore,
} from '../../src/core/receiver/deadLetters';
import { FileLock, LockedError, describeOwner, type LockOwner } from '../../src/core/receiver/lock';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-stores-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const abortListeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

// ---- backoff

test('backoffDelay: from initialMs doubling up to maxMs, each in the upper half of its step and spread over it; failures below 1 count as 1', () => {
  const retry = { initialMs: 100, maxMs: 1000 };
  const sample = (failures: number) => Array.from({ length: 400 }, () => backoffDelay(retry, failures));
  for (const [failures, step] of [
    [-3, 100],
    [0, 100],
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1000],
    [50, 1000],
  ] as const) {
    const delays = sample(failures);
    const low = Math.min(...delays);
    const high = Math.max(...delays);
    assert.ok(low >= step / 2 && high <= step, `failures ${failures}: ${low}..${high} is not within [${step / 2}, ${step}]`);
    assert.ok(low < step * 0.6 && high > step * 0.9, `failures ${failures}: ${low}..${high} does not spread over the upper half`);
  }
  // The exponent stops at 30: a huge maxMs still gives a finite delay.
  const huge = backoffDelay({ initialMs: 1, maxMs: Infinity }, 1000);
  assert.ok(huge >= 2 ** 29 && huge <= 2 ** 30, String(huge));
});

test('clampDelay and sleep: a delay a timer can take; an abort rejects with its reason at once and leaves no listener behind', async () => {
  assert.equal(MAX_TIMER_MS, 2_147_483_647);
  assert.deepEqual([-5, 0, Number.NaN, 0.5, 1, MAX_TIMER_MS, MAX_TIMER_MS + 1, Infinity].map(clampDelay), [
    0,
    0,
    0,
    0.5,
    1,
    MAX_TIMER_MS,
    MAX_TIMER_MS,
    MAX_TIMER_MS,
  ]);
  const error = new AbortError();
  assert.equal(error.name, 'AbortError');
  assert.equal(error.message, 'stopped');
  const plain = new AbortController();
  plain.abort('not an error');
  assert.ok(abortReason(plain.signal) instanceof AbortError, 'a reason that is no Error becomes an AbortError');

  const controller = new AbortController();
  const began = Date.now();
  await sleep(30, controller.signal);
  assert.ok(Date.now() - began >= 25);
  assert.equal(abortListeners(controller.signal), 0, 'a finished sleep leaves no listener');

  const reason = new Error('stop now');
  const aborted = new AbortController();
  aborted.abort(reason);
  await assert.rejects(sleep(10_000, aborted.signal), (e) => e === reason);

  const later = new AbortController();
  const waiting = sleep(10_000, later.signal);
  assert.equal(abortListeners(later.signal), 1);
  const started = Date.now();
  later.abort(reason);
  await assert.rejects(waiting, (e) => e === reason);
  assert.ok(Date.now() - started < 1000, 'rejected at once');
  assert.equal(abortListeners(later.signal), 0);
});

test('raceAbort: the work settles it unless the signal aborts first; a non-Error rejection becomes an Error; no listener is left', async () => {
  const controller = new AbortController();
  assert.equal(await raceAbort(Promise.resolve(7), controller.signal), 7);
  assert.equal(abortListeners(controller.signal), 0);
  await assert.rejects(raceAbort(Promise.reject('text'), controller.signal), (e: unknown) => e instanceof Error && e.message === 'text');
  assert.equal(abortListeners(controller.signal), 0);
  const failure = new TypeError('bad');
  await assert.rejects(raceAbort(Promise.reject(failure), controller.signal), (e) => e === failure);

  const reason = new Error('stopped first');
  const stopping = new AbortController();
  const racing = raceAbort(new Promise<void>(() => {}), stopping.signal);
  stopping.abort(reason);
  await assert.rejects(racing, (e) => e === reason);
  assert.equal(abortListeners(stopping.signal), 0, 'the listener was added with once');
  await assert.rejects(raceAbort(Promise.reject(new Error('late')), stopping.signal), (e) => e === reason, 'already aborted');
});

// ---- dead letters

const letter = (handler: string, n: number, extra: Partial<DeadLetter> = {}): DeadLetter => ({
  time: '2026-12-07T00:00:00.000Z',
  handler,
  error: `refused ${n}`,
  errorName: 'UndeliverableError',
  attempts: 1,
  message: { ident: 'x', n },
  ...extra,
});

async function storeContract(store: DeadLetterStore) {
  assert.deepEqual(await store.read(), []);
  await store.add([letter('a', 1), letter('b', 2), letter('a', 3)]);
  assert.deepEqual(
    [...(await store.counts())],
    [
      ['a', 2],
      ['b', 1],
    ],
  );
  assert.deepEqual(
    (await store.read('a')).map((l) => l.message.n),
    [1, 3],
  );
  assert.deepEqual(
    (await store.read()).map((l) => l.message.n),
    [1, 2, 3],
  );
  await store.remove((await store.read('a')).slice(0, 1));
  assert.deepEqual(
    (await store.read()).map((l) => l.message.n),
    [2, 3],
  );
}

test('MemoryDeadLetterStore: per handler, oldest first, removal, and full at exactly maxLetters', async () => {
  await storeContract(new MemoryDeadLetterStore());
  const small = new MemoryDeadLetterStore(2);
  await small.add([letter('a', 1), letter('a', 2)]);
  await assert.rejects(
    small.add([letter('a', 3)]),
    (e: unknown) => e instanceof DeadLetterStoreFullError && e.name === 'DeadLetterStoreFullError' && /is full \(2 messages\)/.test(e.message),
  );
});

test('FileDeadLetterStore: the same as memory, in a private NDJSON file; blank and broken lines are skipped; full at maxBytes with sizes in KB or MB', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'sub', 'x.dead-letters.ndjson');
  await storeContract(new FileDeadLetterStore(path));
  assert.equal((await stat(path)).mode & 0o777, 0o600, 'only the owner can read the messages');
  await appendFile(path, '\n   \n{"handler": 5}\n[1]\nnull\n{"cut short');
  const reopened = new FileDeadLetterStore(path);
  assert.deepEqual(
    (await reopened.read()).map((l) => l.message.n),
    [2, 3],
  );
  await reopened.add([]);
  assert.equal(await readFile(path, 'utf8').then((text) => text.endsWith('{"cut short')), true, 'an empty add writes nothing');

  const line = JSON.stringify(letter('a', 1)) + '\n';
  const bytes = Buffer.byteLength(line);
  const exact = new FileDeadLetterStore(join(dir, 'exact.ndjson'), bytes * 2);
  await exact.add([letter('a', 1)]);
  await exact.add([letter('a', 1)]);
  await assert.rejects(exact.add([letter('a', 1)]), (e: unknown) => {
    assert.ok(e instanceof DeadLetterStoreFullError);
    assert.match(e.message, new RegExp(`is full \\(${Math.ceil((bytes * 2) / 1024)} KB of ${Math.ceil((bytes * 2) / 1024)} KB\\)`));
    return true;
  });
  const existing = join(dir, 'big.ndjson');
  await writeFile(existing, 'x'.repeat(1024 * 1024) + '\n');
  await assert.rejects(new FileDeadLetterStore(existing, 1024 * 1024 + 1).add([letter('a', 1)]), /is full \(1\.0 MB of 1\.0 MB\)/);
  await new FileDeadLetterStore(existing, 3 * 1024 * 1024).add([letter('a', 1)]);
  assert.deepEqual(
    (await new FileDeadLetterStore(existing).read()).map((l) => l.message.n),
    [1],
    'added after what the file held (which is no letter)',
  );

  // A message that cannot be JSON (a cycle) is recorded with why.
  const cyclic: Record<string, unknown> = { ident: 'c' };
  cyclic.self = cyclic;
  const odd = new FileDeadLetterStore(join(dir, 'odd.ndjson'));
  await odd.add([letter('a', 1, { message: cyclic })]);
  const [recorded] = await odd.read();
  assert.match(String((recorded!.message as { unserializable?: string }).unserializable), /circular|cycle/i);
});

test('deadLetterPathFor: beside the checkpoint, replacing .checkpoint.json or .json at the end only', () => {
  assert.equal(deadLetterPathFor('/s/a.checkpoint.json'), '/s/a.dead-letters.ndjson');
  assert.equal(deadLetterPathFor('/s/a.json'), '/s/a.dead-letters.ndjson');
  assert.equal(deadLetterPathFor('/s/a'), '/s/a.dead-letters.ndjson');
  assert.equal(deadLetterPathFor('/s/a.checkpoint.json.bak'), '/s/a.checkpoint.json.bak.dead-letters.ndjson');
  assert.equal(deadLetterPathFor('/s/a.json.old'), '/s/a.json.old.dead-letters.ndjson');
});

// ---- lock

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((done) => child.once('exit', done));
  return child.pid!;
}

test('lock record: pid, host, start time, who, boot id and a fresh id, one JSON object ending in a newline', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a', 'c.lock');
  const lock = new FileLock(path, 'the test');
  await lock.acquire();
  t.after(() => lock.release());
  const text = await readFile(path, 'utf8');
  assert.ok(text.endsWith('}\n'));
  const owner = JSON.parse(text) as LockOwner;
  assert.equal(owner.pid, process.pid);
  assert.equal(owner.hostname, hostname());
  assert.ok(Math.abs(Date.parse(owner.since) - Date.now()) < 5000);
  assert.equal(owner.by, 'the test');
  assert.match(owner.id, /^[0-9a-f]{16}$/);
  if (existsSync('/proc/sys/kernel/random/boot_id')) assert.equal(owner.bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  const unnamed = new FileLock(join(dir, 'b.lock'));
  await unnamed.acquire();
  assert.equal('by' in (JSON.parse(await readFile(join(dir, 'b.lock'), 'utf8')) as object), false);
  await unnamed.release();
});

test('LockedError: local or not, and the owner described with and without who and when', () => {
  const here: LockOwner = { pid: 5, hostname: hostname(), since: 'then', id: 'i' };
  const error = new LockedError('/x.lock', { ...here, by: 'run x.json' });
  assert.equal(error.local, true);
  assert.equal(error.message, `/x.lock is held by pid 5 on this machine (run x.json), since then`);
  assert.equal(new LockedError('/x.lock', { ...here, hostname: 'far' }).local, false);
  assert.equal(describeOwner({ ...here, hostname: 'far' }), 'pid 5 on host far, since then');
  assert.equal(new LockedError('/x.lock', here, 'custom').message, 'custom');
});

test('lock: another host counts as alive even when its pid does not run here; records without an integer pid, a host or an id are stale', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'c.lock');
  const gone = await deadPid();
  await writeFile(path, JSON.stringify({ pid: gone, hostname: 'elsewhere.example', since: 'x', id: 'far' }));
  await assert.rejects(new FileLock(path).acquire(), (e: unknown) => e instanceof LockedError && e.owner.pid === gone && !e.local);

  // A live process (this test's parent) with records missing one field each: not lock records, so stale.
  const live = process.ppid;
  for (const broken of [
    { pid: String(live), hostname: hostname(), id: 'a' },
    { pid: live + 0.5, hostname: hostname(), id: 'a' },
    { pid: live, hostname: 7, id: 'a' },
    { pid: live, hostname: hostname(), id: 7 },
  ]) {
    await writeFile(path, JSON.stringify(broken));
    const lock = new FileLock(path);
    await lock.acquire();
    assert.ok(lock.isHeld, `took over ${JSON.stringify(broken)}`);
    assert.equal(lock.takenOverFrom, undefined, 'nobody owned it');
    await lock.release();
  }
  await writeFile(path, JSON.stringify({ pid: live, hostname: hostname(), id: 'alive' }));
  await assert.rejects(new FileLock(path).acquire(), (e: unknown) => e instanceof LockedError && /, since an unknown time$/.test(e.message));
  assert.equal((await FileLock.owner(path))?.pid, live);
  assert.equal(await FileLock.owner(join(dir, 'none.lock')), undefined);
});

test('lock release: a file already gone is fine; a file another owner wrote meanwhile is left alone; releaseSync does the same without waiting', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'c.lock');
  const lock = new FileLock(path);
  await lock.acquire();
  await rm(path);
  await lock.release();
  assert.equal(lock.isHeld, false);

  await lock.acquire();
  const other = JSON.stringify({ pid: process.ppid, hostname: hostname(), since: 'x', id: 'someone-else' });
  await writeFile(path, other);
  await lock.release();
  assert.equal(await readFile(path, 'utf8'), other, "another owner's lock stays");
  await rm(path);

  await lock.acquire();
  assert.ok(lock.isHeld);
  lock.releaseSync();
  assert.equal(lock.isHeld, false);
  assert.equal(existsSync(path), false);
  lock.releaseSync(); // not held: nothing
  await lock.acquire();
  await writeFile(path, other);
  lock.releaseSync();
  assert.equal(await readFile(path, 'utf8'), other);
  await rm(path);
  await lock.acquire();
  await rm(path);
  assert.doesNotThrow(() => lock.releaseSync(), 'a file already gone is fine');
  assert.equal(lock.isHeld, false);
  // After a release, this process holds nothing at that path: a record of this pid there is stale.
  await writeFile(path, JSON.stringify({ pid: process.pid, hostname: hostname(), since: 'x', id: 'old' }));
  const again = new FileLock(path);
  await again.acquire();
  assert.equal(again.takenOverFrom?.id, 'old');
  await again.release();
});
