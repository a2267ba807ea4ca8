// The checkpoint's owner lock with real files and real processes: a live owner (this process or
// another one) is refused by name, a dead one is taken over, a lock of another host is never taken
// over, and a process that exits without releasing leaves no lock behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CheckpointLockedError, FileCheckpointStore } from '../../src/core/receiver/checkpoint';
import { FileLock, type LockOwner } from '../../src/core/receiver/lock';

const ROOT = resolve(__dirname, '../..');

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'flespi-lock-'));
}

function record(pid: number, extra: Partial<LockOwner> = {}): string {
  return JSON.stringify({ pid, hostname: hostname(), since: new Date().toISOString(), id: `test-${pid}`, ...extra });
}

test('lock: a second store on the same checkpoint is refused with the owner named, and gets it once released', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'state', 'c.json');
    const first = new FileCheckpointStore(path, { by: 'first receiver' });
    const second = new FileCheckpointStore(path);
    assert.deepEqual(await first.acquire(), { takenOverFrom: undefined });
    await first.acquire(); // again while held: nothing happens
    const owner = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as LockOwner;
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.by, 'first receiver');
    await assert.rejects(second.acquire(), (error: unknown) => {
      assert.ok(error instanceof CheckpointLockedError, String(error));
      assert.match(
        error.message,
        new RegExp(
          `checkpoint ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another receiver: pid ${process.pid} on this machine \\(first receiver\\)`,
        ),
      );
      assert.match(error.message, /deliver messages twice/);
      return true;
    });
    await second.release(); // not held: must not remove the first one's lock
    assert.ok(existsSync(`${path}.lock`), 'release() of a store that does not hold the lock leaves it alone');
    await first.release();
    assert.ok(!existsSync(`${path}.lock`));
    await second.acquire();
    assert.equal((JSON.parse(await readFile(`${path}.lock`, 'utf8')) as LockOwner).pid, process.pid);
    await second.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lock: held by another live process it is refused; once that process is dead the lock is taken over', async () => {
  const dir = await tempDir();
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const path = join(dir, 'c.json');
    await writeFile(`${path}.lock`, record(child.pid!, { by: 'flespi-receiver run other.json' }));
    const store = new FileCheckpointStore(path);
    await assert.rejects(store.acquire(), new RegExp(`pid ${child.pid} on this machine \\(flespi-receiver run other\\.json\\)`));
    assert.equal(await FileLock.owner(`${path}.lock`).then((o) => o?.pid), child.pid);

    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));
    assert.equal(await FileLock.owner(`${path}.lock`), undefined, 'a dead owner is no owner');
    const { takenOverFrom } = await store.acquire();
    assert.equal(takenOverFrom?.pid, child.pid, 'acquire() says whose stale lock it took over');
    const now = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as LockOwner;
    assert.equal(now.pid, process.pid);
    await store.release();
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

test('lock: a record of this pid that no lock object of this process holds (a reused pid), an unreadable file and a record from before a reboot are stale', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'c.lock');
    for (const stale of [record(process.pid), 'not json', record(1, { bootId: 'some-other-boot' })]) {
      if (stale.includes('some-other-boot') && !existsSync('/proc/sys/kernel/random/boot_id')) continue;
      await writeFile(path, stale);
      const lock = new FileLock(path);
      await lock.acquire();
      assert.ok(lock.isHeld, `took over ${stale}`);
      await lock.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lock: a lock held on another host is never taken over; the message says to delete it if that host no longer runs it', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'c.json');
    await writeFile(`${path}.lock`, record(1, { hostname: 'elsewhere.example' }));
    await assert.rejects(new FileCheckpointStore(path).acquire(), (error: unknown) => {
      assert.ok(error instanceof CheckpointLockedError);
      assert.equal(error.local, false);
      assert.match(error.message, /pid 1 on host elsewhere\.example/);
      assert.match(error.message, new RegExp(`delete ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.lock`));
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lock: a process that exits without release() leaves no lock file behind', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'c.json');
    const script = `const { FileCheckpointStore } = require(${JSON.stringify(join(ROOT, 'src/core/receiver/checkpoint.ts'))});
      const store = new FileCheckpointStore(${JSON.stringify(path)});
      store.acquire().then(() => {
        process.stdout.write(require('node:fs').existsSync(${JSON.stringify(`${path}.lock`)}) ? 'held' : 'missing');
        process.exit(0);
      });`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(result.stdout, 'held', `the child took the lock; stderr: ${result.stderr}`);
    assert.ok(!existsSync(`${path}.lock`), 'the exit hook removed it');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
