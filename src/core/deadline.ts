/**
 * One abort signal for "the caller gave up, or the whole exchange took too long". A socket timeout
 * only bounds idle time (a server dripping a byte at a time never trips it), so every request to a
 * server we do not control also gets a deadline for its whole answer.
 */
export interface Deadline {
  /** Aborts when the caller's signal does or when the deadline passes. */
  readonly signal: AbortSignal;
  /** True once the deadline (not the caller) aborted `signal`. */
  readonly passed: boolean;
  /** Clears the timer and the listener on the caller's signal: a long-lived caller signal (a receiver's) must not collect one per request. */
  dispose(): void;
}

export function deadline(ms: number, outer?: AbortSignal): Deadline {
  const controller = new AbortController();
  let passed = false;
  const timer = setTimeout(() => {
    passed = true;
    controller.abort();
  }, ms);
  const onAbort = () => controller.abort();
  outer?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    get passed() {
      return passed;
    },
    dispose() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}
