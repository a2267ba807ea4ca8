/**
 * The host's side of one tail panel, without vscode: a bounded ring buffer of received messages
 * (the source of truth for forward, copy and export by id), the batching towards the webview,
 * and the counters. Pure and synchronous so that it can be tested on its own.
 */
import { messageKey } from '../../core/flespi/subscription';
import type { FlespiMessage } from '../../core/message';
import type { TailCounters, TailItem } from '../../shared/tailProtocol';

export interface TailModelOptions {
  /** How many messages the buffer keeps (the newest win). */
  bufferSize: number;
  /** Most messages one batch to the webview may carry; older pending ones count as dropped. */
  maxPerBatch?: number;
  /** Clock, epoch milliseconds (tests pass their own). */
  now?: () => number;
}

const RATE_WINDOW_SECONDS = 5;

export class TailModel {
  readonly bufferSize: number;
  private readonly maxPerBatch: number;
  private readonly now: () => number;
  /** Slot (id - 1) % bufferSize holds the item with that id; ids are contiguous, so the buffer is ids (nextId - size .. nextId - 1). */
  private readonly ring: Array<TailItem | undefined>;
  private size = 0;
  private nextId = 1;
  /** Every id up to this one was either sent to the webview or counted as dropped. */
  private settledId = 0;
  private shown = 0;
  private dropped = 0;
  private lastMessageAt: number | null = null;
  private paused = false;
  /** Messages received per whole second (epoch seconds → count), for the rate. */
  private readonly perSecond = new Map<number, number>();

  constructor(options: TailModelOptions) {
    if (!Number.isSafeInteger(options.bufferSize) || options.bufferSize < 1)
      throw new RangeError(`bufferSize must be a positive integer, got ${options.bufferSize}`);
    this.bufferSize = options.bufferSize;
    this.maxPerBatch = Math.max(1, Math.min(options.maxPerBatch ?? options.bufferSize, options.bufferSize));
    this.now = options.now ?? Date.now;
    this.ring = new Array<TailItem | undefined>(this.bufferSize);
  }

  /**
   * Adds received messages in order. With `dedupe`, messages already in the buffer (same content)
   * are skipped: backfill and gap fill over REST overlap with what MQTT delivered.
   * Returns the items added.
   */
  add(messages: readonly FlespiMessage[], options: { dedupe?: boolean } = {}): TailItem[] {
    const fresh = options.dedupe ? this.withoutKnown(messages) : messages;
    if (fresh.length === 0) return [];
    const receivedAt = this.now();
    const added: TailItem[] = [];
    for (const message of fresh) {
      const item: TailItem = { id: this.nextId++, receivedAt, message };
      this.ring[(item.id - 1) % this.bufferSize] = item;
      added.push(item);
    }
    this.size = Math.min(this.bufferSize, this.size + fresh.length);
    this.lastMessageAt = receivedAt;
    const second = Math.floor(receivedAt / 1000);
    this.perSecond.set(second, (this.perSecond.get(second) ?? 0) + fresh.length);
    return added;
  }

  /**
   * The next batch for the webview: the newest pending messages, at most `limit` (default
   * `maxPerBatch`, never more than the buffer). Older pending ones are counted as dropped.
   * Empty while paused or when nothing is pending.
   */
  takeBatch(limit = this.maxPerBatch): TailItem[] {
    if (this.paused) return [];
    return this.settle(Math.max(1, Math.min(limit, this.bufferSize)));
  }

  /**
   * Everything the webview should hold after it (re)loaded: every buffered message up to the last
   * one settled. Pending messages are settled first (as by `takeBatch`) unless paused.
   */
  snapshot(): TailItem[] {
    if (!this.paused) this.settle(this.maxPerBatch);
    const items: TailItem[] = [];
    for (let id = this.firstId; id <= this.settledId; id++) items.push(this.at(id));
    return items;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** The buffered items with these ids, in id order; ids no longer buffered are left out. */
  get(ids: readonly number[]): TailItem[] {
    const wanted = [...new Set(ids)].filter((id) => id >= this.firstId && id < this.nextId).sort((a, b) => a - b);
    return wanted.map((id) => this.at(id));
  }

  /** Every buffered item, oldest first. */
  all(): TailItem[] {
    const items: TailItem[] = [];
    for (let id = this.firstId; id < this.nextId; id++) items.push(this.at(id));
    return items;
  }

  /** The newest `server.timestamp` in the buffer: where a gap fill after a reconnect starts. */
  lastServerTimestamp(): number | undefined {
    let newest: number | undefined;
    for (let id = this.nextId - 1; id >= this.firstId; id--) {
      const ts = this.at(id).message['server.timestamp'];
      if (typeof ts === 'number' && Number.isFinite(ts) && (newest === undefined || ts > newest)) newest = ts;
      // Messages arrive roughly in server order: looking back a little is enough.
      if (newest !== undefined && this.nextId - id > 1000) break;
    }
    return newest;
  }

  counters(): TailCounters {
    const received = this.nextId - 1;
    return {
      received,
      shown: this.shown,
      dropped: this.dropped,
      rate: this.rate(),
      lastMessageAt: this.lastMessageAt,
      paused: this.paused,
      pending: received - this.settledId,
    };
  }

  /** Forgets everything (restart, new filter). */
  clear(): void {
    this.ring.fill(undefined);
    this.size = 0;
    this.nextId = 1;
    this.settledId = 0;
    this.shown = 0;
    this.dropped = 0;
    this.lastMessageAt = null;
    this.perSecond.clear();
  }

  private get firstId(): number {
    return this.nextId - this.size;
  }

  private at(id: number): TailItem {
    return this.ring[(id - 1) % this.bufferSize] as TailItem;
  }

  /** Marks every pending message settled: the newest `limit` still buffered are returned as shown, the rest dropped. */
  private settle(limit: number): TailItem[] {
    const newest = this.nextId - 1;
    const pending = newest - this.settledId;
    if (pending === 0) return [];
    const from = Math.max(this.settledId + 1, this.firstId, newest - limit + 1);
    const batch: TailItem[] = [];
    for (let id = from; id <= newest; id++) batch.push(this.at(id));
    this.shown += batch.length;
    this.dropped += pending - batch.length;
    this.settledId = newest;
    return batch;
  }

  private rate(): number {
    const nowSecond = Math.floor(this.now() / 1000);
    let count = 0;
    for (const [second, n] of this.perSecond) {
      if (second <= nowSecond - RATE_WINDOW_SECONDS) this.perSecond.delete(second);
      else count += n;
    }
    return Math.round((count / RATE_WINDOW_SECONDS) * 10) / 10;
  }

  private withoutKnown(messages: readonly FlespiMessage[]): FlespiMessage[] {
    const known = new Set<string>();
    let oldest = Infinity;
    for (const message of messages) oldest = Math.min(oldest, serverTimestamp(message) ?? Infinity);
    // Compare with the buffered messages from the same time on (the buffer is roughly in server order).
    for (let id = this.nextId - 1; id >= this.firstId; id--) {
      const message = this.at(id).message;
      const ts = serverTimestamp(message);
      if (ts !== undefined && ts < oldest && this.nextId - id > 1000) break;
      known.add(messageKey(message));
    }
    const fresh: FlespiMessage[] = [];
    for (const message of messages) {
      const key = messageKey(message);
      if (known.has(key)) continue;
      known.add(key);
      fresh.push(message);
    }
    return fresh;
  }
}

function serverTimestamp(message: FlespiMessage): number | undefined {
  const ts = message['server.timestamp'];
  return typeof ts === 'number' && Number.isFinite(ts) ? ts : undefined;
}
