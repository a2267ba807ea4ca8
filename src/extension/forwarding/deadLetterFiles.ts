/**
 * The dead-letter files of continuous forwarding: one NDJSON store per connection and channel, in
 * the extension's storage, shared by the receiver that appends to it and the commands that read and
 * resend (one store object per file, so their writes are serialized). No vscode here.
 */
import { join } from 'node:path';
import { redeliverDeadLetters, type RedeliveryOutcome } from '../../core/deliver';
import type { Handler } from '../../core/handler';
import type { Logger } from '../../core/logger';
import { FileDeadLetterStore, type DeadLetter } from '../../core/receiver/deadLetters';
import { namesIn } from './folder';

const SUFFIX = '.dead-letters.ndjson';

export interface ChannelLetters {
  channelId: number;
  letters: DeadLetter[];
}

export class DeadLetterFiles {
  private readonly stores = new Map<string, FileDeadLetterStore>();

  constructor(readonly dir: string) {}

  /** The store of one forwarding; the same object every time for one file. */
  store(connection: string, channelId: number): FileDeadLetterStore {
    const path = join(this.dir, `${prefix(connection)}${channelId}${SUFFIX}`);
    let store = this.stores.get(path);
    if (!store) {
      store = new FileDeadLetterStore(path);
      this.stores.set(path, store);
    }
    return store;
  }

  /** Dead letters per sink name over every channel of `connection`. */
  async counts(connection: string): Promise<Map<string, number>> {
    const totals = new Map<string, number>();
    for (const channelId of await this.channels(connection)) {
      for (const [sink, count] of await this.store(connection, channelId).counts()) totals.set(sink, (totals.get(sink) ?? 0) + count);
    }
    return totals;
  }

  /** A sink's dead letters, per channel (channels without any are left out). */
  async read(connection: string, sink: string): Promise<ChannelLetters[]> {
    const found: ChannelLetters[] = [];
    for (const channelId of await this.channels(connection)) {
      const letters = await this.store(connection, channelId).read(sink);
      if (letters.length > 0) found.push({ channelId, letters });
    }
    return found;
  }

  /**
   * Sends a sink's dead letters again through fresh handlers, channel by channel; those accepted leave
   * their file. `skip` names channels whose file another window writes to (it runs that forwarding).
   */
  async resend(
    connection: string,
    sink: string,
    createHandler: () => Promise<Handler>,
    options: { timeoutMs: number; log?: Logger; describeError?: (error: unknown) => string; skip?: (channelId: number) => boolean },
  ): Promise<RedeliveryOutcome & { skipped: number }> {
    const total: RedeliveryOutcome & { skipped: number } = { sent: 0, remaining: 0, errors: [], ms: 0, skipped: 0 };
    for (const { channelId, letters } of await this.read(connection, sink)) {
      if (options.skip?.(channelId)) {
        total.skipped += letters.length;
        continue;
      }
      const outcome = await redeliverDeadLetters(this.store(connection, channelId), sink, createHandler, options);
      total.sent += outcome.sent;
      total.remaining += outcome.remaining;
      total.errors.push(...outcome.errors.map((e) => `channel ${channelId}: ${e}`));
      total.ms += outcome.ms;
    }
    return total;
  }

  /** Channel ids with a dead-letter file of `connection`. */
  private async channels(connection: string): Promise<number[]> {
    const start = prefix(connection);
    return (await namesIn(this.dir))
      .filter((name) => name.startsWith(start) && name.endsWith(SUFFIX))
      .map((name) => Number(name.slice(start.length, -SUFFIX.length)))
      .filter((id) => Number.isInteger(id) && id > 0)
      .sort((a, b) => a - b);
  }
}

/** The file name prefix of a connection's stores ('eu', 'sandbox', a base URL: made safe for a file name). */
function prefix(connection: string): string {
  return `${connection.replace(/[^\w.-]+/g, '_')}-channel-`;
}

/** A sink's dead letters as one JSON document to read in an editor: the newest last, each with its channel. */
export function deadLettersDocument(found: readonly ChannelLetters[]): string {
  const rows = found.flatMap(({ channelId, letters }) =>
    letters.map(({ time, error, errorName, attempts, message }) => ({ time, channel: channelId, error, errorName, attempts, message })),
  );
  rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return JSON.stringify(rows, null, 2) + '\n';
}
