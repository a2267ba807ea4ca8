import { FlespiError } from '../errors';
import { MAX_POLL_TIMEOUT_S, type FlespiClient } from '../flespi/client';
import type { Checkpoint, Source, SourceBatch } from './source';

export interface RestSourceOptions {
  client: FlespiClient;
  channelId: number;
  /** Soft cap on messages per batch (flespi may return slightly more). Default 1000. */
  limitCount?: number;
  /** Soft cap on bytes per batch. Default: flespi's own (100 MB). */
  limitSize?: number;
  /** Long-poll seconds while the channel has nothing new (1..30). Default 20. */
  timeout?: number;
  /**
   * Delete messages from the channel buffer once every handler accepted them. Only for a single
   * reader: another receiver with `delete` on the same channel would delete what this one has not read.
   */
  delete?: boolean;
  /** The `curr_key` of the first run (no checkpoint yet). Default 0: the oldest message in the buffer. */
  startKey?: number;
}

/** Where a batch came from in the channel buffer. */
interface BatchKeys {
  /** The `curr_key` it was fetched with. */
  currKey: number;
  /** The `next_key` flespi answered: every message of the batch has a lower key. */
  nextKey: number;
}

/**
 * Reads a flespi channel buffer by key (REST "style A", `GET /gw/channels/{id}/messages` with
 * `curr_key`/`next_key`), long-polling while it is empty.
 *
 * Keys: the first message of a channel has key 1, and `next_key` is the last returned key + 1; a
 * poll with `curr_key` K returns messages with keys ≥ K. The checkpoint after a batch is its
 * `next_key`, so a restart resumes right after the last acknowledged batch.
 *
 * Deleting: the receiver fetches ahead (prefetch), so the `curr_key` of a GET is usually beyond the
 * last acknowledged batch, and `delete=true` on that GET would delete messages no handler has
 * accepted yet. So GETs never carry `delete`; `ack(batch)` deletes explicitly with
 * `DELETE …/messages` and `delete_key` = the batch's `next_key`, i.e. exactly the acknowledged messages.
 */
export class RestSource implements Source {
  readonly description: string;
  private readonly client: FlespiClient;
  private readonly channelId: number;
  private readonly limitCount: number;
  private readonly limitSize?: number;
  private readonly timeout: number;
  private readonly deleteAcked: boolean;
  private readonly startKey: number;
  private readonly keys = new WeakMap<SourceBatch, BatchKeys>();
  /** The `curr_key` of the next GET: the `next_key` of the last batch handed out. */
  private fetchKey = 0;
  private seq = 0;
  private opened = false;

  constructor(options: RestSourceOptions) {
    this.client = options.client;
    this.channelId = options.channelId;
    this.limitCount = options.limitCount ?? 1000;
    this.limitSize = options.limitSize;
    this.timeout = options.timeout ?? 20;
    this.deleteAcked = options.delete ?? false;
    this.startKey = options.startKey ?? 0;
    if (!Number.isInteger(this.timeout) || this.timeout < 1 || this.timeout > MAX_POLL_TIMEOUT_S) {
      throw new RangeError(`RestSource timeout must be an integer from 1 to ${MAX_POLL_TIMEOUT_S} seconds, got ${this.timeout}`);
    }
    this.description = `channel ${this.channelId} over REST (${this.client.baseUrl})`;
  }

  async open(checkpoint: Checkpoint | undefined): Promise<void> {
    this.fetchKey = checkpoint?.currKey ?? this.startKey;
    this.opened = true;
  }

  /** Polls until the buffer has messages after the current key; empty long-poll answers are not batches. */
  async next(signal: AbortSignal): Promise<SourceBatch> {
    if (!this.opened) throw new Error('RestSource.next() called before open()');
    for (;;) {
      signal.throwIfAborted();
      const currKey = this.fetchKey;
      const { messages, nextKey } = await this.client.pollChannelMessages(this.channelId, { currKey, limitCount: this.limitCount, limitSize: this.limitSize, timeout: this.timeout }, signal);
      if (messages.length === 0) {
        // Only ever move forward: some servers answer an empty poll with next_key 0 or none at all.
        if (nextKey !== undefined && nextKey > currKey) this.fetchKey = nextKey;
        continue;
      }
      if (nextKey === undefined || nextKey <= currKey) {
        // Without a next_key the same messages would come back forever; refuse rather than loop on duplicates.
        throw new FlespiError('malformed', `flespi returned ${messages.length} messages of channel ${this.channelId} without a usable next_key (curr_key ${currKey}, next_key ${nextKey ?? 'none'}): cannot tell where the next batch starts; check that the base URL points at the flespi REST API`);
      }
      this.fetchKey = nextKey;
      const batch: SourceBatch = { seq: ++this.seq, messages };
      this.keys.set(batch, { currKey, nextKey });
      return batch;
    }
  }

  checkpointAfter(batch: SourceBatch): Checkpoint {
    return { currKey: this.keysOf(batch).nextKey };
  }

  async ack(batch: SourceBatch): Promise<void> {
    const { nextKey } = this.keysOf(batch);
    if (this.deleteAcked) await this.client.deleteChannelMessages(this.channelId, nextKey);
    this.keys.delete(batch);
  }

  async close(): Promise<void> {
    this.opened = false;
  }

  private keysOf(batch: SourceBatch): BatchKeys {
    const keys = this.keys.get(batch);
    if (!keys) throw new Error(`batch ${batch.seq} did not come from this RestSource`);
    return keys;
  }
}
