/**
 * What the detail pane adds to a message: epoch values as readable times, and what changed since
 * the previous message of the same device.
 */
import type { FlespiMessage } from '../../src/core/message';
import type { TailItem } from '../../src/shared/tailProtocol';
import { formatEpochMs, formatValue } from './columns';
import { el } from './dom';

/** 2001-09-09 … 2100-01-01: numbers in this range under a time-like key are epoch seconds. */
const MIN_EPOCH_S = 1_000_000_000;
const MAX_EPOCH_S = 4_102_444_800;

/**
 * The local time an epoch value stands for, when its key says it is a time (`timestamp`,
 * `server.timestamp`, `…time…`) and it lies between 2001 and 2100: seconds, or milliseconds when
 * it is 1000 times larger. Undefined for anything else.
 */
export function readableTime(key: string, value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  if (!/time/i.test(key)) return undefined;
  if (value >= MIN_EPOCH_S && value < MAX_EPOCH_S) return formatEpochMs(value * 1000);
  if (value >= MIN_EPOCH_S * 1000 && value < MAX_EPOCH_S * 1000) return formatEpochMs(value);
  return undefined;
}

export interface Change {
  key: string;
  /** undefined: the key is new. */
  before?: unknown;
  /** undefined: the key is gone. */
  after?: unknown;
}

/** The top-level keys whose values differ between two messages, in the newer message's key order (removed keys last). */
export function diffMessages(previous: FlespiMessage, current: FlespiMessage): Change[] {
  const changes: Change[] = [];
  for (const [key, after] of Object.entries(current)) {
    if (!(key in previous)) changes.push({ key, after });
    else if (!sameValue(previous[key], after)) changes.push({ key, before: previous[key], after });
  }
  for (const [key, before] of Object.entries(previous)) if (!(key in current)) changes.push({ key, before });
  return changes;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The newest message before `item` from the same device, searching back from its place in `items` (oldest first). */
export function previousOfDevice(items: readonly TailItem[], item: TailItem, identOf: (m: FlespiMessage) => string): TailItem | undefined {
  let low = 0;
  let high = items.length - 1;
  let index = -1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (items[mid].id === item.id) {
      index = mid;
      break;
    }
    if (items[mid].id < item.id) low = mid + 1;
    else high = mid - 1;
  }
  if (index < 0) return undefined;
  const ident = identOf(item.message);
  for (let i = index - 1; i >= 0; i--) if (identOf(items[i].message) === ident) return items[i];
  return undefined;
}

/** The "Changes since the previous message of this device" section. */
export function renderDiff(item: TailItem, previous: TailItem | undefined): HTMLElement {
  const section = el('details', { className: 'detail-extra', attrs: { 'data-testid': 'detail-diff' } });
  section.open = true;
  if (!previous) {
    section.append(el('summary', { text: 'No earlier message of this device in the buffer to compare with.' }));
    return section;
  }
  const changes = diffMessages(previous.message, item.message);
  const dt =
    typeof item.message.timestamp === 'number' && typeof previous.message.timestamp === 'number'
      ? item.message.timestamp - previous.message.timestamp
      : undefined;
  const since = `#${previous.id}${dt === undefined ? '' : `, ${Math.round(dt * 1000) / 1000} s earlier`}`;
  section.append(
    el('summary', {
      text:
        changes.length === 0
          ? `Nothing changed since the previous message of this device (${since})`
          : `${changes.length} changed since the previous message of this device (${since})`,
    }),
  );
  const rows = changes.slice(0, 200).map((c) =>
    el('tr', {
      attrs: { 'data-key': c.key },
      children: [
        el('td', { className: 'json-key', text: c.key }),
        el('td', { className: 'diff-old', text: c.before === undefined ? '(new)' : formatValue(c.before) }),
        el('td', { text: '→' }),
        el('td', { className: 'diff-new', text: c.after === undefined ? '(gone)' : formatValue(c.after) }),
      ],
    }),
  );
  if (rows.length > 0) section.append(el('table', { className: 'diff-table', children: [el('tbody', { children: rows })] }));
  return section;
}
