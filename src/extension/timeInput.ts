/** Times typed by the user in prompts (start forwarding from a time, a history range). No vscode here. */

/**
 * A time the user typed: `2026-11-26 14:05` (local time, seconds optional), an ISO time with a zone,
 * or a span back from `now`: `15m`, `2h`, `1d` (also `2 h ago`). Undefined when it is none of these.
 */
export function parseStartTime(text: string, now = Date.now()): number | undefined {
  const value = text.trim();
  const span = /^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)(?:\s+ago)?$/i.exec(value);
  if (span) {
    const unit = { s: 1_000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[span[2]!.toLowerCase() as 's' | 'm' | 'min' | 'h' | 'd'];
    return now - Number(span[1]) * unit;
  }
  const local = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (local) {
    const [y, mo, d, h, mi, s] = local.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
    const date = new Date(y, mo - 1, d, h, mi, s);
    return date.getMonth() === mo - 1 && date.getDate() === d && h < 24 && mi < 60 && s < 60 ? date.getTime() : undefined;
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(value)) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** `2026-11-26 14:05:09` in local time, for the time question's default and the choices. */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
