/**
 * The devices seen in the tail: per ident, how many messages, how fast, when last, where last. Kept
 * incrementally (each message is looked at once, in id order), and a list view of it.
 */
import type { FlespiMessage } from '../../src/core/message';
import type { TailItem } from '../../src/shared/tailProtocol';
import { formatClock } from './columns';
import { el } from './dom';

/** The rate counts the messages received over this many seconds. */
const RATE_SECONDS = 10;
/** The list shows at most this many devices (the most recently seen). */
const LIST_LIMIT = 500;

export interface DeviceInfo {
  ident: string;
  /** `device.name` when the channel sends it. */
  name?: string;
  count: number;
  /** Local receive time of its newest message, epoch ms. */
  lastSeen: number;
  /** Id of its newest message. */
  lastId: number;
  lat?: number;
  lon?: number;
  /** Course of its newest position, degrees clockwise from north. */
  direction?: number;
  /** Messages per receive-second: `seconds[i]` is the second that `counts[i]` counts. */
  seconds: number[];
  counts: number[];
}

/** The device a message comes from: its ident as text ('' when it has none). */
export function identOf(message: FlespiMessage): string {
  const ident = message.ident;
  return typeof ident === 'string' ? ident : ident === undefined || ident === null ? '' : String(ident);
}

/** A colour per device, the same for the same ident in every panel and session. */
export function deviceColor(ident: string): string {
  let hash = 2166136261;
  for (let i = 0; i < ident.length; i++) {
    hash ^= ident.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  const hue = (hash >>> 0) % 360;
  return `hsl(${hue}, 75%, ${hue > 40 && hue < 200 ? 38 : 50}%)`;
}

export function latLon(message: FlespiMessage): [number, number] | undefined {
  const lat = message['position.latitude'];
  const lon = message['position.longitude'];
  if (typeof lat !== 'number' || typeof lon !== 'number' || !Number.isFinite(lat) || !Number.isFinite(lon)) return undefined;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return undefined;
  return [lat, lon];
}

export class DeviceStats {
  private readonly devices = new Map<string, DeviceInfo>();
  private lastId = 0;

  get size(): number {
    return this.devices.size;
  }

  get(ident: string): DeviceInfo | undefined {
    return this.devices.get(ident);
  }

  /** Forgets everything (a new buffer). */
  reset(): void {
    this.devices.clear();
    this.lastId = 0;
  }

  /** Counts the items newer than the last one counted; `items` are in increasing id order. */
  addFrom(items: readonly TailItem[]): void {
    let start = items.length;
    // The first item newer than the last one counted (binary search: ids increase).
    let low = 0;
    let high = items.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (items[mid].id > this.lastId) {
        start = mid;
        high = mid - 1;
      } else low = mid + 1;
    }
    for (let i = start; i < items.length; i++) this.add(items[i]);
  }

  private add(item: TailItem): void {
    this.lastId = item.id;
    const message = item.message;
    const ident = identOf(message);
    let info = this.devices.get(ident);
    if (!info) {
      info = { ident, count: 0, lastSeen: 0, lastId: 0, seconds: new Array<number>(RATE_SECONDS).fill(-1), counts: new Array<number>(RATE_SECONDS).fill(0) };
      this.devices.set(ident, info);
    }
    info.count++;
    info.lastSeen = item.receivedAt;
    info.lastId = item.id;
    const name = message['device.name'];
    if (typeof name === 'string' && name !== '') info.name = name.slice(0, 200);
    const position = latLon(message);
    if (position) {
      [info.lat, info.lon] = position;
      const direction = message['position.direction'];
      info.direction = typeof direction === 'number' && Number.isFinite(direction) ? direction : undefined;
    }
    const second = Math.floor(item.receivedAt / 1000);
    const slot = second % RATE_SECONDS;
    if (info.seconds[slot] !== second) {
      info.seconds[slot] = second;
      info.counts[slot] = 0;
    }
    info.counts[slot]++;
  }

  /** Messages per second over the last RATE_SECONDS seconds before `now` (epoch ms). */
  rate(info: DeviceInfo, now: number): number {
    const newest = Math.floor(now / 1000);
    let sum = 0;
    for (let i = 0; i < RATE_SECONDS; i++) if (info.seconds[i] > newest - RATE_SECONDS && info.seconds[i] <= newest) sum += info.counts[i];
    return sum / RATE_SECONDS;
  }

  /** Most recently seen first. */
  list(): DeviceInfo[] {
    return [...this.devices.values()].sort((a, b) => b.lastSeen - a.lastSeen || a.ident.localeCompare(b.ident));
  }
}

export interface DeviceListEvents {
  /** A device was clicked: the one to filter to, or undefined to show all again. */
  pick(ident: string | undefined): void;
}

/** The Devices view: one row per ident; a click filters the tail to it, a second click shows all. */
export class DeviceList {
  readonly element = el('div', { className: 'device-list', attrs: { role: 'table', 'aria-label': 'Devices', 'data-testid': 'device-list' } });
  private selected: string | undefined;

  constructor(
    private readonly stats: DeviceStats,
    private readonly events: DeviceListEvents,
  ) {
    this.element.addEventListener('click', (event) => {
      const row = (event.target as Element).closest<HTMLElement>('[data-ident]');
      if (!row) return;
      const ident = row.dataset.ident ?? '';
      this.events.pick(ident === this.selected ? undefined : ident);
    });
    this.element.addEventListener('keydown', (event) => {
      const row = (event.target as Element).closest<HTMLElement>('[data-ident]');
      if (row && (event.key === 'Enter' || event.key === ' ')) {
        event.preventDefault();
        row.click();
      }
    });
  }

  setSelected(ident: string | undefined): void {
    this.selected = ident;
  }

  render(now = Date.now()): void {
    const focused = (document.activeElement as HTMLElement | null)?.closest?.<HTMLElement>('[data-ident]')?.dataset.ident;
    const header = el('div', {
      className: 'device-row header',
      attrs: { role: 'row' },
      children: ['Device', 'Messages', 'msg/s', 'Last seen', 'Last position'].map((text) => el('span', { text, attrs: { role: 'columnheader' } })),
    });
    const all = this.stats.list();
    const rows = all.slice(0, LIST_LIMIT).map((info) => {
      const dot = el('span', { className: 'device-dot' });
      dot.style.setProperty('--device-color', deviceColor(info.ident));
      const label = info.ident === '' ? '(no ident)' : info.ident;
      const row = el('div', {
        className: 'device-row',
        attrs: { role: 'row', tabindex: '0', 'data-ident': info.ident, 'aria-selected': String(info.ident === this.selected) },
        children: [
          el('span', {
            className: 'device-name',
            attrs: { role: 'cell', title: info.name ? `${label} (${info.name})` : label },
            children: [dot, el('span', { text: label }), info.name ? el('span', { className: 'muted', text: ` ${info.name}` }) : undefined],
          }),
          el('span', { text: String(info.count), attrs: { role: 'cell', 'data-testid': 'device-count' } }),
          el('span', { text: this.stats.rate(info, now).toFixed(1), attrs: { role: 'cell' } }),
          el('span', { text: formatClock(info.lastSeen).slice(0, 8), attrs: { role: 'cell' } }),
          el('span', { text: info.lat === undefined ? '—' : `${info.lat}, ${info.lon}`, attrs: { role: 'cell' } }),
        ],
      });
      return row;
    });
    const more = all.length > LIST_LIMIT ? el('p', { className: 'muted', text: `… ${all.length - LIST_LIMIT} more devices, seen less recently` }) : undefined;
    const empty = all.length === 0 ? el('p', { className: 'muted', text: 'No messages yet.' }) : undefined;
    const children: HTMLElement[] = [header, ...rows];
    if (more) children.push(more);
    if (empty) children.push(empty);
    this.element.replaceChildren(...children);
    if (focused !== undefined) this.element.querySelector<HTMLElement>(`[data-ident="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
  }
}
