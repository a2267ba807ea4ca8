import { mkdir, readFile, rename, writeFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Checkpoint } from '../sources/source';
import { ConfigError } from '../options';
import { describeOwner, FileLock, LockedError, type LockOwner } from './lock';

/** Where the receiver keeps its position between runs. */
export interface CheckpointStore {
  /** The last saved checkpoint, or undefined on the first run. */
  load(): Promise<Checkpoint | undefined>;
  save(checkpoint: Checkpoint): Promise<void>;
}

/** Keeps the checkpoint in memory only (tail, tests, or sources that keep their position themselves). */
export class MemoryCheckpointStore implements CheckpointStore {
  constructor(private checkpoint?: Checkpoint) {}

  async load(): Promise<Checkpoint | undefined> {
    return this.checkpoint && { ...this.checkpoint };
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    this.checkpoint = { ...checkpoint };
  }
}

/** Another live receiver owns the checkpoint (see `FileCheckpointStore.acquire`). */
export class CheckpointLockedError extends LockedError {
  constructor(
    readonly checkpoint: string,
    locked: LockedError,
  ) {
    super(
      locked.path,
      locked.owner,
      `checkpoint ${checkpoint} is in use by another receiver: ${describeOwner(locked.owner)}. Two receivers on one position fight over it and deliver messages twice` +
        (locked.local ? '' : `; if that host no longer runs it, delete ${locked.path}`),
    );
  }
}

/**
 * Keeps the checkpoint in a small JSON file. Each save writes a temporary file next to it and
 * renames it over the old one, so a crash mid-write leaves either the old or the new checkpoint.
 *
 * One receiver per checkpoint: `acquire()` takes the exclusive lock `<path>.lock` (pid, host, time)
 * before the receiver starts, and `release()` gives it back after it stopped. The Receiver does not
 * take it by itself: the CLI and the extension do, and so should an embedder running receivers in
 * more than one process.
 */
export class FileCheckpointStore implements CheckpointStore {
  private writing: Promise<void> = Promise.resolve();
  readonly lock: FileLock;

  /** `by` says what holds the lock, for the message another receiver gets (e.g. the command line). */
  constructor(
    readonly path: string,
    options: { by?: string } = {},
  ) {
    this.lock = new FileLock(`${path}.lock`, options.by);
  }

  /**
   * Takes the checkpoint's lock; a stale one (its process is gone) is taken over and returned.
   * Rejects with CheckpointLockedError naming the owner when a live receiver holds it.
   */
  async acquire(): Promise<{ takenOverFrom?: LockOwner }> {
    try {
      await this.lock.acquire();
    } catch (error) {
      if (error instanceof LockedError) throw new CheckpointLockedError(this.path, error);
      throw error;
    }
    return { takenOverFrom: this.lock.takenOverFrom };
  }

  /** Gives the lock back (after the receiver stopped). Safe to call when not held. */
  release(): Promise<void> {
    return this.lock.release();
  }

  async load(): Promise<Checkpoint | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConfigError(`checkpoint file ${this.path} is not valid JSON: fix it, or delete it to start from the beginning of the channel`);
    }
    const currKey = (parsed as { currKey?: unknown } | null)?.currKey;
    if (typeof currKey !== 'number' || !Number.isInteger(currKey) || currKey < 0) {
      throw new ConfigError(`checkpoint file ${this.path} has no valid "currKey": fix it, or delete it to start from the beginning of the channel`);
    }
    const { savedAt, time, seen } = parsed as { savedAt?: unknown; time?: unknown; seen?: unknown };
    const checkpoint: Checkpoint = { currKey };
    // The time position (reading by time) is optional: files written before it have only currKey.
    if (typeof time === 'number' && Number.isFinite(time) && time >= 0) {
      checkpoint.time = time;
      checkpoint.seen = Array.isArray(seen) ? seen.filter((s): s is string => typeof s === 'string') : [];
    }
    if (typeof savedAt === 'string') checkpoint.savedAt = savedAt;
    return checkpoint;
  }

  /** Saves are serialized: the last one called is the one left on disk. */
  save(checkpoint: Checkpoint): Promise<void> {
    const write = this.writing.catch(() => {}).then(() => this.write(checkpoint));
    this.writing = write;
    return write;
  }

  private async write(checkpoint: Checkpoint): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.tmp`;
    const position = checkpoint.time === undefined ? {} : { time: checkpoint.time, seen: checkpoint.seen ?? [] };
    const body = JSON.stringify({ currKey: checkpoint.currKey, ...position, savedAt: checkpoint.savedAt ?? new Date().toISOString() }, null, 2) + '\n';
    try {
      await writeFile(temp, body, 'utf8');
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
  }
}
