// Message logs of the sandbox: arrays with a moving head, so appending, reading by key,
// deleting the oldest and finding a time range cost O(1) or O(log n).

/** One stored message. The message itself is kept only as its JSON text: immutable and ready to send. */
export interface StoredMessage {
  /** The channel buffer key (style A). Increasing per channel, starting at 1. */
  readonly key: number;
  readonly channelId: number;
  readonly ident: string;
  readonly deviceId: number | undefined;
  /** `server.timestamp`, the channel's order for time ranges. */
  readonly serverTs: number;
  /** `timestamp`, the device time, the device log's order. */
  readonly ts: number;
  /** Milliseconds since the epoch when the sandbox stored it, for the TTL. */
  readonly storedAt: number;
  readonly json: string;
}

export interface RangeQuery {
  from: number;
  to: number;
  /** At most this many, counted after `accept`. */
  count: number;
  reverse: boolean;
  /** Extra condition (a filter); rejected messages do not count. */
  accept?: (entry: StoredMessage) => boolean;
}

/** Compaction threshold: the dead prefix is dropped once it is this long and over half the array. */
const COMPACT_AFTER = 4096;

abstract class Log {
  protected entries: StoredMessage[] = [];
  protected head = 0;
  /** Total JSON characters held, for `messages_size`. */
  chars = 0;

  constructor(
    readonly capacity: number,
    public ttlMs: number,
  ) {}

  /** True when a full log drops its oldest messages; false when it refuses new ones instead (a channel buffer: see ChannelLog.full). */
  protected get rotates(): boolean {
    return true;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Drops messages past their TTL (and, for a device log, beyond the capacity), oldest first. */
  expire(nowMs: number): void {
    const oldest = nowMs - this.ttlMs;
    let drop = this.rotates ? Math.max(0, this.size - this.capacity) : 0;
    while (this.head + drop < this.entries.length && (this.entries[this.head + drop] as StoredMessage).storedAt < oldest) drop++;
    this.dropOldest(drop);
  }

  protected dropOldest(count: number): void {
    const end = this.head + Math.min(count, this.size);
    for (let i = this.head; i < end; i++) this.chars -= (this.entries[i] as StoredMessage).json.length;
    this.head = end;
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Messages whose time is within [from, to], oldest or newest first. */
  protected range(time: (e: StoredMessage) => number, ordered: boolean, query: RangeQuery): StoredMessage[] {
    let candidates: StoredMessage[];
    let lo: number;
    let hi: number;
    if (ordered) {
      candidates = this.entries;
      lo = lowerBound(candidates, this.head, candidates.length, (e) => time(e) >= query.from);
      hi = lowerBound(candidates, lo, candidates.length, (e) => time(e) > query.to);
    } else {
      candidates = this.entries.slice(this.head).filter((e) => time(e) >= query.from && time(e) <= query.to);
      candidates.sort((a, b) => time(a) - time(b));
      lo = 0;
      hi = candidates.length;
    }
    const out: StoredMessage[] = [];
    const accept = query.accept;
    if (query.reverse) {
      for (let i = hi - 1; i >= lo && out.length < query.count; i--) {
        const e = candidates[i] as StoredMessage;
        if (!accept || accept(e)) out.push(e);
      }
    } else {
      for (let i = lo; i < hi && out.length < query.count; i++) {
        const e = candidates[i] as StoredMessage;
        if (!accept || accept(e)) out.push(e);
      }
    }
    return out;
  }
}

/** A channel buffer: messages in arrival order, keyed 1, 2, 3, ... (keys stay contiguous). */
export class ChannelLog extends Log {
  /** The key the next message gets. */
  nextKey: number;

  /**
   * `firstKey` > 1 lets a restarted sandbox keep numbering above the keys it handed out before (see
   * SandboxOptions.firstKey). `capacity` (messages) and `bufferChars` (JSON characters, i.e. bytes for
   * ASCII) bound the buffer: a full buffer takes nothing more (flespi blocks the channel) until
   * deletes or the TTL make room; it never drops its oldest messages to make room.
   */
  constructor(
    capacity: number,
    ttlMs: number,
    firstKey = 1,
    readonly bufferChars = Infinity,
  ) {
    super(capacity, ttlMs);
    this.nextKey = firstKey;
  }

  protected override get rotates(): boolean {
    return false;
  }

  /** True when the buffer holds its capacity or its size limit: the channel takes no more messages. */
  get full(): boolean {
    return this.size >= this.capacity || this.chars >= this.bufferChars;
  }
  /** Whether `server.timestamp` never decreased, so time ranges can binary-search. */
  private orderedByServerTs = true;

  get firstKey(): number {
    return this.size === 0 ? this.nextKey : (this.entries[this.head] as StoredMessage).key;
  }

  get last(): StoredMessage | undefined {
    return this.size === 0 ? undefined : this.entries[this.entries.length - 1];
  }

  /** Appends a message built for the next key. */
  append(build: (key: number) => StoredMessage): StoredMessage {
    const entry = build(this.nextKey++);
    const last = this.last;
    if (last && entry.serverTs < last.serverTs) this.orderedByServerTs = false;
    this.entries.push(entry);
    this.chars += entry.json.length;
    return entry;
  }

  /** Deletes every message with a key below `key`; returns how many. */
  deleteBelow(key: number): number {
    const count = Math.max(0, Math.min(this.size, key - this.firstKey));
    this.dropOldest(count);
    if (this.size === 0) this.orderedByServerTs = true;
    return count;
  }

  /** Messages from `key` on, up to `limitCount` and (softly) `limitChars`: the one crossing the size limit is included. */
  fromKey(key: number, limitCount: number, limitChars: number): StoredMessage[] {
    const start = this.head + Math.max(0, key - this.firstKey);
    const out: StoredMessage[] = [];
    let chars = 0;
    for (let i = start; i < this.entries.length && out.length < limitCount && chars < limitChars; i++) {
      const e = this.entries[i] as StoredMessage;
      out.push(e);
      chars += e.json.length;
    }
    return out;
  }

  byServerTime(query: RangeQuery): StoredMessage[] {
    return this.range((e) => e.serverTs, this.orderedByServerTs, query);
  }
}

/**
 * A device's messages, ordered by device `timestamp` (late messages are inserted in place). flespi
 * stores a device's messages under their `timestamp` (to the microsecond), so a message with the
 * `timestamp` of one already stored is merged into it: one message with the parameters of both, the
 * newer values winning (flespi forum, https://forum.flespi.com/d/25/67).
 */
export class DeviceLog extends Log {
  /** Stores `entry`, or merges it into the message with the same `timestamp`; returns what the log now holds for that time. */
  insert(entry: StoredMessage): StoredMessage {
    const n = this.entries.length;
    const at = n === this.head || (this.entries[n - 1] as StoredMessage).ts < entry.ts ? n : lowerBound(this.entries, this.head, n, (e) => e.ts >= entry.ts);
    const same = at < n ? (this.entries[at] as StoredMessage) : undefined;
    if (same && same.ts === entry.ts) {
      const merged: StoredMessage = { ...entry, json: JSON.stringify({ ...(JSON.parse(same.json) as object), ...(JSON.parse(entry.json) as object) }) };
      this.entries[at] = merged;
      this.chars += merged.json.length - same.json.length;
      return merged;
    }
    if (at === n) this.entries.push(entry);
    else this.entries.splice(at, 0, entry);
    this.chars += entry.json.length;
    return entry;
  }

  byDeviceTime(query: RangeQuery): StoredMessage[] {
    return this.range((e) => e.ts, true, query);
  }
}

/** The first index in [lo, hi) where `pred` holds, for a predicate that is false then true. */
function lowerBound(entries: readonly StoredMessage[], lo: number, hi: number, pred: (e: StoredMessage) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(entries[mid] as StoredMessage)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
