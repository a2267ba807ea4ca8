import { mkdir, readFile, rename, writeFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Checkpoint } from '../sources/source';
import { ConfigError } from '../options';

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

/**
 * Keeps the checkpoint in a small JSON file. Each save writes a temporary file next to it and
 * renames it over the old one, so a crash mid-write leaves either the old or the new checkpoint.
 */
export class FileCheckpointStore implements CheckpointStore {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

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
    const savedAt = (parsed as { savedAt?: unknown }).savedAt;
    return typeof savedAt === 'string' ? { currKey, savedAt } : { currKey };
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
    const body = JSON.stringify({ currKey: checkpoint.currKey, savedAt: checkpoint.savedAt ?? new Date().toISOString() }, null, 2) + '\n';
    try {
      await writeFile(temp, body, 'utf8');
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
  }
}
