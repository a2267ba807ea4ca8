import type { HandlerContext } from '../../src/core/handler';
import { silentLogger } from '../../src/core/logger';

/** A HandlerContext for calling a handler directly that records what it rejects (`ctx.reject`). */
export interface RecordingContext extends HandlerContext {
  /** Index in the batch → the reason given, in the order the handler rejected them. */
  readonly rejected: Map<number, unknown>;
  /** `index: reason message` per rejection, for assertions and failure messages. */
  reasons(): string[];
}

export function recordingContext(signal: AbortSignal = new AbortController().signal): RecordingContext {
  const rejected = new Map<number, unknown>();
  return {
    signal,
    attempt: 1,
    log: silentLogger,
    rejected,
    reject(index, reason) {
      if (rejected.has(index)) throw new Error(`message ${index} was rejected twice in one attempt`);
      rejected.set(index, reason);
    },
    reasons: () => [...rejected].map(([index, reason]) => `${index}: ${reason instanceof Error ? reason.message : String(reason)}`),
  };
}

/** A message nested `depth` levels deep: `{ level: { level: ... { leaf: true } } }`. */
export function nested(depth: number): unknown {
  let value: unknown = { leaf: true };
  for (let i = 0; i < depth; i++) value = { level: value };
  return value;
}

/** How deep `nested()` went, counted without recursion (assert.deepEqual would overflow the stack). */
export function depthOf(value: unknown): number {
  let depth = 0;
  while (typeof value === 'object' && value !== null && 'level' in value) {
    value = (value as { level: unknown }).level;
    depth++;
  }
  return depth;
}
