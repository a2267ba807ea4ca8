/** What the table shows for a column key, and how values are turned into text. */
import type { FlespiMessage } from '../../src/core/message';

export interface Column {
  key: string;
  label: string;
  /** Initial width in px. */
  width: number;
  text(message: FlespiMessage): string;
}

const KNOWN: Record<string, Omit<Column, 'key'>> = {
  timestamp: { label: 'Device time', width: 215, text: (m) => formatTimestamp(m.timestamp) },
  'server.timestamp': { label: 'Server time', width: 215, text: (m) => formatTimestamp(m['server.timestamp']) },
  ident: { label: 'Ident', width: 150, text: (m) => formatValue(m.ident) },
  position: { label: 'Position', width: 190, text: (m) => formatPosition(m) },
  'position.speed': { label: 'Speed', width: 70, text: (m) => formatValue(m['position.speed']) },
};

export function columnFor(key: string): Column {
  const known = KNOWN[key];
  if (known) return { key, ...known };
  return { key, label: key, width: Math.min(260, Math.max(90, key.length * 8 + 24)), text: (m) => formatValue(m[key]) };
}

export function columnLabel(key: string): string {
  return KNOWN[key]?.label ?? key;
}

/** A flespi timestamp (seconds, fractional) as local time with milliseconds: 2024-05-01 12:00:00.123. */
export function formatTimestamp(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return formatValue(value);
  return formatEpochMs(value * 1000);
}

export function formatEpochMs(ms: number): string {
  const d = new Date(Math.round(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  const p = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
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

function formatPosition(m: FlespiMessage): string {
  const lat = m['position.latitude'];
  const lon = m['position.longitude'];
  if (lat === undefined && lon === undefined) return '';
  return `${formatValue(lat)}, ${formatValue(lon)}`;
}
