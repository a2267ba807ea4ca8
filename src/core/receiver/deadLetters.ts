/**
 * The dead-letter store: where a message goes when a handler can never deliver it, with why, so that
 * it is neither lost nor allowed to hold up the channel. Kafka Connect's dead-letter queue and
 * Logstash's DLQ are the models: an append-only record per message, bounded in size, that a person
 * reads, fixes the cause of, and sends again.
 */
import { appendFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stringifySafely } from '../json';
import type { FlespiMessage } from '../message';

export interface DeadLetter {
  /** ISO time it was recorded. */
  time: string;
  /** The handler (sink) that could not deliver it. */
  handler: string;
  /** Why: the handler's error message. */
  error: string;
  /** The error's class name (UndeliverableError, TypeError, ...). */
  errorName: string;
  /** Delivery attempts this message was part of before it was recorded. */
  attempts: number;
  /** The receiver's source, e.g. `channel 123 (REST)`. */
  source?: string;
  message: FlespiMessage;
}

/** Thrown by `add` when the store is full: the receiver keeps retrying those messages (nothing is dropped) until there is room. */
export class DeadLetterStoreFullError extends Error {
  override readonly name = 'DeadLetterStoreFullError';
}

export interface DeadLetterStore {
  /** Where the letters are, for messages to the user (a file path, or "memory"). */
  readonly location: string;
  /** Records letters durably, all or none. Throws DeadLetterStoreFullError when they do not fit. */
  add(letters: readonly DeadLetter[]): Promise<void>;
  /** Letters per handler name. */
  counts(): Promise<Map<string, number>>;
  /** Every letter, oldest first (of one handler when given). */
  read(handler?: string): Promise<DeadLetter[]>;
  /** Removes the given letters (as `read` returned them), e.g. after they were sent again. */
  remove(letters: readonly DeadLetter[]): Promise<void>;
}

/** Default bound of a dead-letter file: plenty for a day of bad messages, small enough to open in an editor. */
export const DEFAULT_DEAD_LETTER_MAX_BYTES = 64 * 1024 * 1024;

/** Keeps letters in memory (tests, the tail, embedders that persist nothing). */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly location = 'memory';
  private letters: DeadLetter[] = [];

  constructor(private readonly maxLetters = 100_000) {}

  async add(letters: readonly DeadLetter[]): Promise<void> {
    if (this.letters.length + letters.length > this.maxLetters) {
      throw new DeadLetterStoreFullError(`the dead-letter store is full (${this.maxLetters} messages): read them, then remove them to make room`);
    }
    this.letters.push(...letters);
  }

  async counts(): Promise<Map<string, number>> {
    return countByHandler(this.letters);
  }

  async read(handler?: string): Promise<DeadLetter[]> {
    return this.letters.filter((l) => handler === undefined || l.handler === handler);
  }

  async remove(letters: readonly DeadLetter[]): Promise<void> {
    const gone = new Set(letters);
    this.letters = this.letters.filter((l) => !gone.has(l));
  }
}

/**
 * Keeps letters as NDJSON (one `DeadLetter` per line) in a file the user can read with any tool.
 * Appends are serialized and each is one write, so a crash leaves at most one partial last line,
 * which reading skips. Past `maxBytes` it refuses new letters instead of dropping old ones.
 */
export class FileDeadLetterStore implements DeadLetterStore {
  private queue: Promise<unknown> = Promise.resolve();
  private bytes?: number;

  constructor(
    readonly location: string,
    readonly maxBytes = DEFAULT_DEAD_LETTER_MAX_BYTES,
  ) {}

  add(letters: readonly DeadLetter[]): Promise<void> {
    return this.serialized(async () => {
      if (letters.length === 0) return;
      const text = letters.map(letterLine).join('');
      const size = Buffer.byteLength(text);
      const current = await this.size();
      if (current + size > this.maxBytes) {
        throw new DeadLetterStoreFullError(
          `the dead-letter file ${this.location} is full (${formatBytes(current)} of ${formatBytes(this.maxBytes)}): read it, fix what the errors say, send the messages again or move the file away; until then the receiver keeps retrying these messages`,
        );
      }
      await mkdir(dirname(this.location), { recursive: true });
      await appendFile(this.location, text, { encoding: 'utf8', mode: 0o600 });
      this.bytes = current + size;
    });
  }

  counts(): Promise<Map<string, number>> {
    return this.serialized(async () => countByHandler(await this.readAll()));
  }

  read(handler?: string): Promise<DeadLetter[]> {
    return this.serialized(async () => (await this.readAll()).filter((l) => handler === undefined || l.handler === handler));
  }

  remove(letters: readonly DeadLetter[]): Promise<void> {
    return this.serialized(async () => {
      const gone = new Set(letters.map(letterLine));
      const kept = (await this.readAll()).filter((l) => !gone.delete(letterLine(l)));
      const text = kept.map(letterLine).join('');
      const temp = `${this.location}.${process.pid}.tmp`;
      await writeFile(temp, text, { encoding: 'utf8', mode: 0o600 });
      await rename(temp, this.location);
      this.bytes = Buffer.byteLength(text);
    });
  }

  private async size(): Promise<number> {
    if (this.bytes === undefined) {
      try {
        this.bytes = (await stat(this.location)).size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        this.bytes = 0;
      }
    }
    return this.bytes;
  }

  private async readAll(): Promise<DeadLetter[]> {
    let text: string;
    try {
      text = await readFile(this.location, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const letters: DeadLetter[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const parsed = JSON.parse(line) as DeadLetter;
        if (parsed && typeof parsed === 'object' && typeof parsed.handler === 'string') letters.push(parsed);
      } catch {
        // a line cut short by a crash mid-append; the message in it was never acknowledged
      }
    }
    return letters;
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }
}

/** One NDJSON line; a message that cannot be JSON even so (a cycle) is replaced by why, so the record still says what happened. */
function letterLine(letter: DeadLetter): string {
  try {
    return stringifySafely(letter) + '\n';
  } catch (error) {
    return stringifySafely({ ...letter, message: { unserializable: error instanceof Error ? error.message : String(error) } }) + '\n';
  }
}

function countByHandler(letters: readonly DeadLetter[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of letters) counts.set(l.handler, (counts.get(l.handler) ?? 0) + 1);
  return counts;
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}

/** The dead-letter file that goes with a checkpoint file, so the two move and get deleted together. */
export function deadLetterPathFor(checkpointPath: string): string {
  return checkpointPath.replace(/\.checkpoint\.json$|\.json$|$/, '.dead-letters.ndjson');
}
