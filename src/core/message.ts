/**
 * A flespi message: a flat JSON object keyed by dotted parameter names
 * (`ident`, `timestamp`, `server.timestamp`, `position.latitude`, ...).
 * Any parameter may be missing; `timestamp` and `server.timestamp` are floats (seconds).
 */
export type FlespiMessage = Record<string, unknown>;

/** Reads a numeric parameter, or undefined when it is absent or not a finite number. */
export function numberParam(message: FlespiMessage, name: string): number | undefined {
  const value = message[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Reads a string parameter, or undefined when it is absent or not a string. */
export function stringParam(message: FlespiMessage, name: string): string | undefined {
  const value = message[name];
  return typeof value === 'string' ? value : undefined;
}
