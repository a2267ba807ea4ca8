/**
 * The webview's bounded copy of what the host sent (oldest first, ids increasing) and the rows
 * the quick search lets through.
 */
import type { TailItem } from '../../src/shared/tailProtocol';
import { identOf } from './devices';

export class MessageBuffer {
  private items: TailItem[] = [];
  /** The rows shown: `items` itself when no search is active. */
  private filtered: TailItem[] | undefined;
  private query = '';
  /** Only this device's messages are shown (the Devices view); undefined: all. */
  private device: string | undefined;
  /** Lower-cased JSON of each message, computed the first time a search looks at it. */
  private readonly searchText = new WeakMap<TailItem, string>();
  /** Parameter names seen so far, for the column picker. */
  readonly keys = new Set<string>();

  constructor(private limit: number) {}

  /** How many messages it keeps (the host's bufferSize). */
  get capacity(): number {
    return this.limit;
  }

  get rows(): readonly TailItem[] {
    return this.filtered ?? this.items;
  }

  get size(): number {
    return this.items.length;
  }

  /** Every buffered message, whatever the search or device filter shows (oldest first). */
  get all(): readonly TailItem[] {
    return this.items;
  }

  /** A quick search or a device filter narrows the rows. */
  get searching(): boolean {
    return this.query !== '' || this.device !== undefined;
  }

  setCapacity(capacity: number): void {
    this.limit = Math.max(1, capacity);
    this.evict();
  }

  /** Replaces everything (the host resent its buffer). */
  reset(batch: readonly TailItem[]): void {
    this.items = batch.slice(-this.limit);
    this.noteKeys(this.items);
    this.filtered = this.searching ? this.items.filter((item) => this.matches(item)) : undefined;
  }

  /** Appends a batch; returns how many of the shown rows fell off the front (so the table can keep its place). */
  append(batch: readonly TailItem[]): number {
    const newest = this.items.length > 0 ? this.items[this.items.length - 1].id : 0;
    const fresh = batch.filter((item) => item.id > newest);
    this.noteKeys(fresh);
    for (const item of fresh) this.items.push(item);
    if (this.filtered) for (const item of fresh) if (this.matches(item)) this.filtered.push(item);
    return this.evict();
  }

  setQuery(query: string): void {
    this.query = query.trim().toLowerCase();
    this.filtered = this.searching ? this.items.filter((item) => this.matches(item)) : undefined;
  }

  setDevice(ident: string | undefined): void {
    this.device = ident;
    this.filtered = this.searching ? this.items.filter((item) => this.matches(item)) : undefined;
  }

  /** The buffered item with this id (binary search: ids increase). */
  find(id: number): TailItem | undefined {
    const index = indexOfId(this.items, id);
    return index >= 0 ? this.items[index] : undefined;
  }

  /** Index of an id among the shown rows, or -1. */
  rowIndex(id: number): number {
    return indexOfId(this.rows, id);
  }

  oldestId(): number | undefined {
    return this.items[0]?.id;
  }

  private evict(): number {
    const excess = this.items.length - this.limit;
    if (excess <= 0) return 0;
    const oldestKept = this.items[excess].id;
    this.items.splice(0, excess);
    if (!this.filtered) return excess;
    let gone = 0;
    while (gone < this.filtered.length && this.filtered[gone].id < oldestKept) gone++;
    this.filtered.splice(0, gone);
    return gone;
  }

  private matches(item: TailItem): boolean {
    if (this.device !== undefined && identOf(item.message) !== this.device) return false;
    if (this.query === '') return true;
    let text = this.searchText.get(item);
    if (text === undefined) {
      text = JSON.stringify(item.message).toLowerCase();
      this.searchText.set(item, text);
    }
    return text.includes(this.query);
  }

  private noteKeys(items: readonly TailItem[]): void {
    // Enough to pick from; a device sending random keys must not grow this forever.
    if (this.keys.size >= 1000) return;
    const sample = items.length > 200 ? items.slice(-200) : items;
    for (const item of sample) for (const key of Object.keys(item.message)) this.keys.add(key);
  }
}

function indexOfId(rows: readonly TailItem[], id: number): number {
  let low = 0;
  let high = rows.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const midId = rows[mid].id;
    if (midId === id) return mid;
    if (midId < id) low = mid + 1;
    else high = mid - 1;
  }
  return -1;
}
