/** What the table shows for a column key, and how values are turned into text. */
import type { FlespiMessage } from '../../src/core/message';

export interface Column {
  key: string;
  label: string;
  /** Initial width in px. */
  width: number;
  text(message: FlespiMessage): string;
  /** The cell's tooltip when the text is a shortened form (full timestamp, full coordinates). */
  title?(message: FlespiMessage): string;
  /** What sorting compares: numbers numerically, strings numeric-aware; undefined sorts last. */
  sortValue(message: FlespiMessage): number | string | undefined;
}

/** No column can be dragged narrower than this. */
export const MIN_COLUMN_WIDTH = 40;
export const MAX_COLUMN_WIDTH = 2000;

const timeColumn = (label: string, key: string): Omit<Column, 'key'> => ({
  label,
  width: 165,
  text: (m) => formatShortTime(m[key]),
  title: (m) => {
    const value = m[key];
    return typeof value === 'number' ? formatIsoLocal(value * 1000) : '';
  },
  sortValue: (m) => sortable(m[key]),
});

const KNOWN: Record<string, Omit<Column, 'key'>> = {
  timestamp: timeColumn('Time', 'timestamp'),
  'server.timestamp': timeColumn('Server time', 'server.timestamp'),
  ident: { label: 'Device', width: 150, text: (m) => formatValue(m.ident), sortValue: (m) => sortable(m.ident) },
  position: {
    label: 'Position',
    width: 170,
    text: (m) => formatPosition(m, 5),
    title: (m) => formatPosition(m),
    sortValue: (m) => sortable(m['position.latitude']),
  },
  'position.speed': { label: 'Speed', width: 80, text: (m) => formatValue(m['position.speed']), sortValue: (m) => sortable(m['position.speed']) },
};

export function columnFor(key: string): Column {
  const known = KNOWN[key];
  if (known) return { key, ...known };
  return { key, label: key, width: Math.min(260, Math.max(90, key.length * 8 + 24)), text: (m) => formatValue(m[key]), sortValue: (m) => sortable(m[key]) };
}

export function columnLabel(key: string): string {
  return KNOWN[key]?.label ?? key;
}

function sortable(value: unknown): number | string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return Number.isNaN(value) ? undefined : value;
  return typeof value === 'string' ? value : formatValue(value);
}

/** A flespi timestamp (seconds, fractional) as local time with milliseconds: 2024-05-01 12:00:00.123. */
export function formatTimestamp(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return formatValue(value);
  return formatEpochMs(value * 1000);
}

/** A flespi timestamp for a table cell: HH:MM:SS when it is today (local time), else the date too. */
export function formatShortTime(value: unknown, now = Date.now()): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return formatValue(value);
  const d = new Date(Math.round(value * 1000));
  if (Number.isNaN(d.getTime())) return String(value);
  const time = localTime(d).slice(0, 8);
  return localDate(d) === localDate(new Date(now)) ? time : `${localDate(d)} ${time}`;
}

export function formatEpochMs(ms: number): string {
  const d = new Date(Math.round(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${localDate(d)} ${localTime(d)}`;
}

/** ISO 8601 in local time with its UTC offset, e.g. 2024-05-01T15:00:00.123+03:00. */
export function formatIsoLocal(ms: number): string {
  const d = new Date(Math.round(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  const offset = -d.getTimezoneOffset();
  const sign = offset < 0 ? '-' : '+';
  return `${localDate(d)}T${localTime(d)}${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function localDate(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function localTime(d: Date): string {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Time of day only, for the counters bar. */
export function formatClock(ms: number): string {
  return formatEpochMs(ms).slice(11);
}

const MAX_CELL_TEXT = 300;

export function formatValue(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.length > MAX_CELL_TEXT ? `${value.slice(0, MAX_CELL_TEXT)}…` : value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const json = JSON.stringify(value) ?? '';
  return json.length > MAX_CELL_TEXT ? `${json.slice(0, MAX_CELL_TEXT)}…` : json;
}

/** Latitude, longitude; with `digits`, rounded to that many decimals (5 is about a metre). */
function formatPosition(m: FlespiMessage, digits?: number): string {
  const lat = m['position.latitude'];
  const lon = m['position.longitude'];
  if (lat === undefined && lon === undefined) return '';
  const show = (v: unknown) => (digits !== undefined && typeof v === 'number' && Number.isFinite(v) ? String(Number(v.toFixed(digits))) : formatValue(v));
  return `${show(lat)}, ${show(lon)}`;
}
