/**
 * The live tail's message protocol, imported by both the extension host (src/extension/tail/)
 * and the webview (webview/tail/).
 *
 * host → webview: notifications (`HostMessage`). The host is trusted; the webview only switches on `type`.
 * webview → host: commands (`WebviewMessage`). The webview renders device data, so the host
 * treats everything it sends as untrusted and accepts it only through `checkWebviewMessage`.
 */
import type { FlespiMessage } from '../core/message';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'stopped';

/** One message as the tail holds it: `id` increases by one per received message, per panel. */
export interface TailItem {
  id: number;
  /** Local receive time, epoch milliseconds. */
  receivedAt: number;
  message: FlespiMessage;
}

/** Invariant: received = shown + dropped + pending. */
export interface TailCounters {
  /** Messages that reached the host: backfill, live and gap fill. */
  received: number;
  /** Messages sent to the webview. */
  shown: number;
  /** Messages never sent to the webview because newer ones pushed them out (rate or buffer cap). */
  dropped: number;
  /** Messages per second over the last few seconds. */
  rate: number;
  /** Local receive time of the newest message, epoch milliseconds. */
  lastMessageAt: number | null;
  paused: boolean;
  /** Messages received but not sent yet: the "N new" shown while paused. */
  pending: number;
}

export interface ForwardResult {
  sink: string;
  acknowledged: number;
  errors: string[];
  ms: number;
}

export type NoticeLevel = 'info' | 'warning' | 'error';
export type ExportScope = 'selection' | 'buffer';
export type ExportFormat = 'ndjson' | 'csv';

/**
 * Time (the device's), device ident, speed, position (lat, lon): narrow enough to fit a 1000 px
 * editor beside the detail pane. package.json's `flespi.tail.columns` default says the same.
 */
export const DEFAULT_COLUMNS: readonly string[] = ['timestamp', 'ident', 'position.speed', 'position'];

/** The map's tiles (from `flespi.map.tileUrl`): `tileUrl` '' = none, tracks on a plain background with a grid. */
export interface MapSettings {
  /** A Leaflet URL template ({z}/{x}/{y}, optional {s}); its origin is the only one the CSP allows images from. */
  tileUrl: string;
  /** Shown on the map as text (the tile provider's credit). */
  attribution: string;
  attributionUrl?: string;
  /** Why the setting was not used (shown on the map). */
  problem?: string;
}

export type HostMessage =
  | {
      type: 'init';
      channel: { id: number; name: string };
      columns: string[];
      bufferSize: number;
      /** The server-side filter expression in force ('' = none). */
      filter: string;
      paused: boolean;
      /** Which flespi connection the tail reads from, e.g. "flespi.io (EU)" or "sandbox". */
      connectionLabel: string;
      /** Absent: no tiles. */
      map?: MapSettings;
    }
  | { type: 'messages'; batch: TailItem[]; counters: TailCounters; /** Replace the webview's buffer instead of appending. */ reset?: boolean }
  | { type: 'counters'; counters: TailCounters }
  | { type: 'state'; connection: ConnectionState; detail: string }
  | { type: 'forwardResult'; count: number; result?: ForwardResult; error?: string; cancelled?: boolean }
  /** `link`: the part of `text` (a file path) shown as a link; a click asks the host to open it (`openLink` with its id). */
  | { type: 'notice'; level: NoticeLevel; text: string; link?: { text: string; id: number } }
  /** The server filter in force after a setFilter; `refused`: why the one asked for was not applied (the tail goes on as it was). */
  | { type: 'filter'; expression: string; refused?: string };

export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'restart' }
  | { type: 'setFilter'; expression: string }
  | { type: 'forward'; ids: number[] }
  | { type: 'copy'; ids: number[] }
  | { type: 'export'; scope: 'selection'; format: ExportFormat; ids: number[] }
  | { type: 'export'; scope: 'buffer'; format: ExportFormat }
  | { type: 'setColumns'; columns: string[] }
  /** A click on a notice's link: the host opens what it linked (ids it did not hand out open nothing). */
  | { type: 'openLink'; id: number };

export const LIMITS = {
  /** Most ids one command may carry (a selection can cover the whole buffer). */
  ids: 1_000_000,
  /** flespi's own limit for a message filter expression. */
  filterLength: 1024,
  columns: 200,
  columnNameLength: 256,
} as const;

type Check<T> = { ok: true; value: T } | { ok: false; error: string };

const NO_ARGUMENT_TYPES = new Set(['ready', 'pause', 'resume', 'stop', 'restart']);

/**
 * Validates a command from the webview, checking every field's type and bounds: a fresh object
 * holding only the known fields, or what is wrong (for the log).
 */
export function checkWebviewMessage(value: unknown): Check<WebviewMessage> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`expected an object, got ${describe(value)}`);
  const record = value as Record<string, unknown>;
  const type = record.type;
  if (typeof type !== 'string') return fail(`"type" must be a string, got ${describe(type)}`);
  if (NO_ARGUMENT_TYPES.has(type)) return { ok: true, value: { type } as WebviewMessage };
  switch (type) {
    case 'setFilter': {
      const expression = record.expression;
      if (typeof expression !== 'string') return fail(`setFilter.expression must be a string, got ${describe(expression)}`);
      if (expression.length > LIMITS.filterLength)
        return fail(`setFilter.expression is ${expression.length} characters; flespi allows at most ${LIMITS.filterLength}`);
      return { ok: true, value: { type, expression } };
    }
    case 'forward':
    case 'copy': {
      const ids = checkIds(record.ids, `${type}.ids`);
      return ids.ok ? { ok: true, value: { type, ids: ids.value } } : ids;
    }
    case 'export': {
      const { scope, format } = record;
      if (format !== 'ndjson' && format !== 'csv') return fail(`export.format must be "ndjson" or "csv", got ${describe(format)}`);
      if (scope === 'buffer') return { ok: true, value: { type, scope, format } };
      if (scope !== 'selection') return fail(`export.scope must be "selection" or "buffer", got ${describe(scope)}`);
      const ids = checkIds(record.ids, 'export.ids');
      return ids.ok ? { ok: true, value: { type, scope, format, ids: ids.value } } : ids;
    }
    case 'openLink': {
      const id = record.id;
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return fail(`openLink.id must be a positive integer, got ${describe(id)}`);
      return { ok: true, value: { type, id } };
    }
    case 'setColumns': {
      const columns = record.columns;
      if (!Array.isArray(columns)) return fail(`setColumns.columns must be an array, got ${describe(columns)}`);
      if (columns.length > LIMITS.columns) return fail(`setColumns.columns has ${columns.length} entries; at most ${LIMITS.columns}`);
      for (const column of columns) {
        if (typeof column !== 'string' || column.length === 0 || column.length > LIMITS.columnNameLength) {
          return fail(`setColumns.columns must hold non-empty strings of at most ${LIMITS.columnNameLength} characters, got ${describe(column)}`);
        }
      }
      return { ok: true, value: { type, columns: [...(columns as string[])] } };
    }
    default:
      return fail(`unknown command type ${JSON.stringify(type.slice(0, 40))}`);
  }
}

function checkIds(value: unknown, field: string): Check<number[]> {
  if (!Array.isArray(value)) return fail(`${field} must be an array of message ids, got ${describe(value)}`);
  if (value.length === 0) return fail(`${field} is empty: select at least one message`);
  if (value.length > LIMITS.ids) return fail(`${field} has ${value.length} entries; at most ${LIMITS.ids}`);
  for (const id of value) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return fail(`${field} must hold non-negative integers, got ${describe(id)}`);
  }
  return { ok: true, value: [...(value as number[])] };
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

/** A short, log-safe description of an untrusted value (never its full content). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}
