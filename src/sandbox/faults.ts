// Fault injection: SANDBOX ONLY, not part of flespi. Makes the next N matching REST requests fail
// in a chosen way, so clients can be tested against rate limits, outages and broken answers.

export const FAULT_KINDS = ['429', '500', '503', 'hang', 'malformed', 'reset'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultOptions {
  /** Only requests whose path contains this string (e.g. `/messages`); default every flespi API path. */
  match?: string;
  /** For 429: send `Retry-After: <seconds>` (flespi's own header is unknown, so none by default). */
  retryAfter?: number;
}

export interface Fault extends FaultOptions {
  kind: FaultKind;
  /** Requests still to fail. */
  remaining: number;
}

export function isFaultKind(value: unknown): value is FaultKind {
  return typeof value === 'string' && (FAULT_KINDS as readonly string[]).includes(value);
}

/** The queue of pending faults; the REST server takes one per request, first come first served. */
export class FaultQueue {
  private faults: Fault[] = [];

  add(kind: FaultKind, count = 1, options: FaultOptions = {}): void {
    if (!isFaultKind(kind)) throw new Error(`unknown fault kind "${String(kind)}": use one of ${FAULT_KINDS.join(', ')}`);
    if (!Number.isInteger(count) || count < 1) throw new Error(`fault count ${count} is invalid: use a positive integer`);
    this.faults.push({ kind, remaining: count, ...options });
  }

  /** The fault for a request to `path`, consuming one of its count; undefined when none applies. */
  take(path: string): Fault | undefined {
    const index = this.faults.findIndex((f) => f.match === undefined || path.includes(f.match));
    if (index < 0) return undefined;
    const fault = this.faults[index] as Fault;
    fault.remaining--;
    if (fault.remaining === 0) this.faults.splice(index, 1);
    return fault;
  }

  clear(): void {
    this.faults = [];
  }

  get pending(): readonly Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }
}
