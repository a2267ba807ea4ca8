import { createHash } from 'node:crypto';
import { FlespiError, errorMessage } from '../errors';
import { MAX_POLL_TIMEOUT_S, type FlespiClient } from '../flespi/client';
import { silentLogger, type Logger } from '../logger';
import type { FlespiMessage } from '../message';
import { sleep } from '../backoff';
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
  /**
   * How to read: `auto` (default) by key, and by time when flespi refuses key-based reading; `key`
   * only; `time` only (`from` on `server.timestamp`; no long-poll and no `delete`).
   */
  read?: 'auto' | 'key' | 'time';
  /** Reading by time: the wait after a read that found nothing new (ms, default 2000). */
  idlePollMs?: number;
  /**
   * The channel buffer size the fill warning compares `messages_size` with (bytes; default 100 MB,
   * flespi's free plan). With `delete` off, the source warns once the buffer holds 80% of it.
   */
  bufferLimitBytes?: number;
  /** How often the fill is checked (ms, default 10 minutes; flespi refreshes `messages_size` about hourly). */
  bufferCheckMs?: number;
  /** Where the source says what it does by itself (falling back to reading by time, the buffer filling up). */
  log?: Logger;
}

/** flespi's free plan keeps 100 MB per channel buffer (https://flespi.com/kb/channel-entry-point-to-gateway). */
export const FREE_PLAN_BUFFER_BYTES = 100 * 1024 * 1024;
/** The share of the buffer limit at which the fill warning comes. */
const BUFFER_WARN_SHARE = 0.8;
/** Reading by time: a page of messages all seen already at one `server.timestamp` grows `count` up to this. */
const MAX_TIME_PAGE = 1_000_000;

/** A position by time: the `server.timestamp` of the last message handed out, and fingerprints of every message handed out with exactly that stamp. */
interface TimePosition {
  time: number;
  seen: string[];
}

/** Where a batch came from, and the position after it. */
interface BatchInfo {
  /** The `next_key` flespi answered (reading by key): every message of the batch has a lower key. */
  nextKey?: number;
  /** The key position to save: `nextKey`, or the last key known when reading by time. */
  currKey: number;
  after: TimePosition;
}

/**
 * Reads a flespi channel buffer, long-polling while it is empty.
 *
 * **By key** (REST "style A", `GET /gw/channels/{id}/messages` with `curr_key`/`next_key`): the first
 * message of a channel has key 1, and `next_key` is the last returned key + 1; a poll with `curr_key`
 * K returns messages with keys ≥ K. The checkpoint after a batch is its `next_key`, so a restart
 * resumes right after the last acknowledged batch.
 *
 * **By time** (style B: `from` on `server.timestamp`, `count`): only the 2018 API description
 * documents key-based reading, and flespi's own tools read channels by time today. When flespi
 * refuses a key-based read (a 400 / code 2, or messages without a `next_key`) and a read by time
 * works, the source says so once and reads by time from then on: `from` = the `server.timestamp` of
 * the last message handed out (inclusive), skipping the messages with exactly that stamp that were
 * handed out already (by a fingerprint of their JSON, so equal stamps never merge distinct messages).
 * Reading by time has no long-poll (an empty read waits `idlePollMs`) and no `delete`. Every
 * checkpoint holds both positions (`currKey`, and `time` + `seen`), so a receiver can switch at any
 * batch; a checkpoint written before (only `currKey`) still loads.
 *
 * Deleting: the receiver fetches ahead (prefetch), so the `curr_key` of a GET is usually beyond the
 * last acknowledged batch, and `delete=true` on that GET would delete messages no handler has
 * accepted yet. So GETs never carry `delete`; `ack(batch)` deletes explicitly with
 * `DELETE …/messages` and `delete_key` = the batch's `next_key`, i.e. exactly the acknowledged messages.
 *
 * With `delete` off, the source checks the channel's `messages_size` every `bufferCheckMs` and warns
 * when the buffer nears `bufferLimitBytes`: flespi blocks a channel whose buffer is full.
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
  private readonly idlePollMs: number;
  private readonly bufferLimitBytes: number;
  private readonly bufferCheckMs: number;
  private readonly log: Logger;
  private readonly batches = new WeakMap<SourceBatch, BatchInfo>();
  private mode: 'key' | 'time';
  private readonly fallback: boolean;
  /** The `curr_key` of the next GET: the `next_key` of the last batch handed out. */
  private fetchKey = 0;
  /** The time position after the last batch handed out. */
  private fetchTime: TimePosition = { time: 0, seen: [] };
  /** True when the checkpoint had a key position but no time position (written before reading by time existed). */
  private keyOnlyCheckpoint = false;
  /** Reading by time: the `count` of the next read (grows while a page holds only messages seen at one stamp). */
  private timePage: number;
  private triedTime = false;
  private seq = 0;
  private opened = false;
  private nextBufferCheck = 0;
  private bufferWarned = false;
  private bufferCheckFailed = false;

  constructor(options: RestSourceOptions) {
    this.client = options.client;
    this.channelId = options.channelId;
    this.limitCount = options.limitCount ?? 1000;
    this.limitSize = options.limitSize;
    this.timeout = options.timeout ?? 20;
    this.deleteAcked = options.delete ?? false;
    this.startKey = options.startKey ?? 0;
    this.idlePollMs = options.idlePollMs ?? 2000;
    this.bufferLimitBytes = options.bufferLimitBytes ?? FREE_PLAN_BUFFER_BYTES;
    this.bufferCheckMs = options.bufferCheckMs ?? 600_000;
    this.log = options.log ?? silentLogger;
    this.mode = options.read === 'time' ? 'time' : 'key';
    this.fallback = (options.read ?? 'auto') === 'auto';
    this.timePage = this.limitCount;
    if (!Number.isInteger(this.timeout) || this.timeout < 1 || this.timeout > MAX_POLL_TIMEOUT_S) {
      throw new RangeError(`RestSource timeout must be an integer from 1 to ${MAX_POLL_TIMEOUT_S} seconds, got ${this.timeout}`);
    }
    this.description = `channel ${this.channelId} over REST (${this.client.baseUrl})`;
  }

  /** How the source reads now: by key, or by time (after flespi refused key-based reading, or when asked to). */
  get reading(): 'key' | 'time' {
    return this.mode;
  }

  async open(checkpoint: Checkpoint | undefined): Promise<void> {
    this.fetchKey = checkpoint?.currKey ?? this.startKey;
    this.fetchTime = checkpoint?.time !== undefined ? { time: checkpoint.time, seen: [...(checkpoint.seen ?? [])] } : { time: 0, seen: [] };
    this.keyOnlyCheckpoint = checkpoint !== undefined && checkpoint.time === undefined && checkpoint.currKey > 0;
    if (this.mode === 'time') this.startReadingByTime(undefined);
    this.opened = true;
  }

  /** Polls until the buffer has messages after the current position; empty answers are not batches. */
  async next(signal: AbortSignal): Promise<SourceBatch> {
    if (!this.opened) throw new Error('RestSource.next() called before open()');
    for (;;) {
      signal.throwIfAborted();
      this.maybeCheckBuffer();
      const batch = this.mode === 'key' ? await this.nextByKey(signal) : await this.nextByTime(signal);
      if (batch) return batch;
    }
  }

  checkpointAfter(batch: SourceBatch): Checkpoint {
    const info = this.infoOf(batch);
    return { currKey: info.currKey, time: info.after.time, seen: info.after.seen };
  }

  async ack(batch: SourceBatch): Promise<void> {
    const info = this.infoOf(batch);
    if (this.deleteAcked && info.nextKey !== undefined) await this.client.deleteChannelMessages(this.channelId, info.nextKey);
    this.batches.delete(batch);
  }

  async close(): Promise<void> {
    this.opened = false;
  }

  /** One key-based poll: a batch, or undefined for an empty answer. Falls back to reading by time when flespi refuses it. */
  private async nextByKey(signal: AbortSignal): Promise<SourceBatch | undefined> {
    const currKey = this.fetchKey;
    let messages: FlespiMessage[];
    let nextKey: number | undefined;
    try {
      ({ messages, nextKey } = await this.client.pollChannelMessages(
        this.channelId,
        { currKey, limitCount: this.limitCount, limitSize: this.limitSize, timeout: this.timeout },
        signal,
      ));
    } catch (error) {
      // A 400 (or code 2) to a key-based read: perhaps this flespi reads channels only by time.
      if (error instanceof FlespiError && error.kind === 'bad-request' && (await this.switchToTime(error, signal))) return undefined;
      throw error;
    }
    if (messages.length === 0) {
      // Only ever move forward: some servers answer an empty poll with next_key 0 or none at all.
      if (nextKey !== undefined && nextKey > currKey) this.fetchKey = nextKey;
      return undefined;
    }
    if (nextKey === undefined || nextKey <= currKey) {
      // Without a next_key the same messages would come back forever; refuse rather than loop on duplicates.
      const error = new FlespiError(
        'malformed',
        `flespi returned ${messages.length} messages of channel ${this.channelId} without a usable next_key (curr_key ${currKey}, next_key ${nextKey ?? 'none'}): cannot tell where the next batch starts; check that the base URL points at the flespi REST API`,
      );
      // Messages stamped by flespi but no key: a server that ignores curr_key and reads by time.
      if (messages.every((m) => typeof m['server.timestamp'] === 'number') && (await this.switchToTime(error, signal))) return undefined;
      throw error;
    }
    this.fetchKey = nextKey;
    const after = advance(this.fetchTime, messages);
    this.fetchTime = after;
    return this.batch(messages, { nextKey, currKey: nextKey, after });
  }

  /** One read by time: a batch of messages not handed out yet, or undefined after waiting `idlePollMs` when there are none. */
  private async nextByTime(signal: AbortSignal): Promise<SourceBatch | undefined> {
    const position = this.fetchTime;
    const count = this.timePage;
    const messages = await this.client.channelMessages(this.channelId, { from: position.time, count }, signal);
    const seen = new Set(position.seen);
    const fresh = messages.filter((m) => {
      const stamp = m['server.timestamp'];
      if (typeof stamp !== 'number') return true;
      return stamp > position.time || (stamp === position.time && !seen.has(fingerprint(m)));
    });
    if (fresh.length === 0) {
      if (messages.length >= count && count < MAX_TIME_PAGE) {
        // A whole page of messages handed out already, all at one stamp: read a larger page.
        this.timePage = Math.min(MAX_TIME_PAGE, count * 2);
        return undefined;
      }
      await sleep(this.idlePollMs, signal);
      return undefined;
    }
    this.timePage = this.limitCount;
    const after = advance(position, fresh);
    this.fetchTime = after;
    return this.batch(fresh, { currKey: this.fetchKey, after });
  }

  /**
   * Tries one read by time after flespi refused a key-based read (`why`). When it works, reading
   * goes on by time (said once, with why); when it does not, or fallback is off, returns false and
   * the caller reports the key-based error.
   */
  private async switchToTime(why: FlespiError, signal: AbortSignal): Promise<boolean> {
    if (!this.fallback || this.triedTime) return false;
    this.triedTime = true;
    try {
      const probe = await this.client.channelMessages(this.channelId, { from: this.fetchTime.time, count: this.limitCount }, signal);
      if (!probe.every((m) => typeof m['server.timestamp'] === 'number')) return false;
    } catch (error) {
      this.log.debug(`channel ${this.channelId}: reading by time does not work either (${errorMessage(error)})`);
      return false;
    }
    this.startReadingByTime(why);
    return true;
  }

  private startReadingByTime(why: FlespiError | undefined): void {
    this.mode = 'time';
    const notes: string[] = [];
    if (why)
      notes.push(
        `flespi refused reading channel ${this.channelId} by key (${why.message}); reading it by time (server.timestamp) from now on, without long-poll`,
      );
    else notes.push(`reading channel ${this.channelId} by time (server.timestamp), without long-poll`);
    if (this.keyOnlyCheckpoint && this.fetchTime.time === 0)
      notes.push('the checkpoint holds only a key, so the buffer is read again from its oldest message (handlers get those messages again)');
    else if (this.fetchTime.time > 0) notes.push(`from server.timestamp ${this.fetchTime.time}`);
    if (this.deleteAcked) notes.push('"delete" needs key-based reading: messages now stay in the buffer until messages_ttl');
    if (why) this.log.warn(notes.join('; '));
    else this.log.info(notes.join('; '));
  }

  private batch(messages: FlespiMessage[], info: BatchInfo): SourceBatch {
    const batch: SourceBatch = { seq: ++this.seq, messages };
    this.batches.set(batch, info);
    return batch;
  }

  private infoOf(batch: SourceBatch): BatchInfo {
    const info = this.batches.get(batch);
    if (!info) throw new Error(`batch ${batch.seq} did not come from this RestSource`);
    return info;
  }

  /** With `delete` off (or unavailable), checks the buffer's fill now and then, in the background. */
  private maybeCheckBuffer(): void {
    if ((this.deleteAcked && this.mode === 'key') || this.bufferCheckFailed) return;
    const now = Date.now();
    if (now < this.nextBufferCheck) return;
    this.nextBufferCheck = now + this.bufferCheckMs;
    void this.checkBuffer().catch((error: unknown) => this.log.debug(`channel ${this.channelId}: cannot check the buffer's fill (${errorMessage(error)})`));
  }

  private async checkBuffer(): Promise<void> {
    let item: Record<string, unknown> | undefined;
    try {
      ({
        items: [item],
      } = await this.client.channels(this.channelId, ['id', 'messages_size', 'blocked']));
    } catch (error) {
      if (error instanceof FlespiError && error.kind === 'bad-request') this.bufferCheckFailed = true; // the fields are not there: stop asking
      throw error;
    }
    const blocked = item?.blocked;
    if (typeof blocked === 'number' && blocked !== 0) {
      this.log.warn(
        `flespi reports channel ${this.channelId} as blocked (code ${blocked}${blocked === 4 ? ': storage, e.g. a full buffer' : ''}): a blocked channel takes no messages from devices; free its buffer ("delete", or a shorter messages_ttl) and check the account's limits at https://flespi.io/#/panel`,
      );
    }
    const sizeKb = item?.messages_size;
    if (typeof sizeKb !== 'number') return;
    const bytes = sizeKb * 1024;
    const share = bytes / this.bufferLimitBytes;
    if (share >= BUFFER_WARN_SHARE && !this.bufferWarned) {
      this.bufferWarned = true;
      // Reading by time, "delete" cannot help: only a shorter messages_ttl does.
      const [reason, remedy] = this.deleteAcked
        ? ['reading by time cannot delete, so', 'shorten messages_ttl']
        : ['with "delete" off', 'turn on "delete" if this receiver is the channel\'s only reader, or shorten messages_ttl'];
      this.log.warn(
        `channel ${this.channelId}'s buffer holds ${mb(bytes)} MB, ${Math.round(share * 100)}% of ${mb(this.bufferLimitBytes)} MB${this.bufferLimitBytes === FREE_PLAN_BUFFER_BYTES ? " (a free account's buffer; commercial plans hold more: set bufferLimitMB)" : ''}: ${reason} only messages_ttl empties it, and flespi blocks a channel whose buffer is full; ${remedy}`,
      );
    } else if (share < BUFFER_WARN_SHARE * 0.9) {
      this.bufferWarned = false;
    }
  }
}

function mb(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/** A message's identity for exact de-duplication at a time boundary: a hash of its JSON. */
export function fingerprint(message: FlespiMessage): string {
  return createHash('sha1').update(JSON.stringify(message)).digest('base64url').slice(0, 22);
}

/** The time position after handing out `messages` from `position` (only the messages at the newest stamp are hashed). */
function advance(position: TimePosition, messages: readonly FlespiMessage[]): TimePosition {
  let time = position.time;
  for (const message of messages) {
    const stamp = message['server.timestamp'];
    if (typeof stamp === 'number' && Number.isFinite(stamp) && stamp > time) time = stamp;
  }
  const seen = time === position.time ? [...position.seen] : [];
  for (const message of messages) if (message['server.timestamp'] === time) seen.push(fingerprint(message));
  return { time, seen };
}
