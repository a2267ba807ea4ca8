/** Exponential backoff with jitter, for retrying handlers and sources. */
export interface RetryOptions {
  /** Delay before the first retry (ms). */
  initialMs: number;
  /** Upper bound of the delay (ms). */
  maxMs: number;
}

export const defaultRetry: RetryOptions = { initialMs: 500, maxMs: 30_000 };

/**
 * Delay before retry number `failures` (1 = after the first failure): doubles each time up to
 * `maxMs`, then takes a random point in its upper half so that many receivers do not retry in step.
 */
export function backoffDelay(retry: RetryOptions, failures: number): number {
  const exponential = Math.min(retry.maxMs, retry.initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(exponential / 2 + (Math.random() * exponential) / 2);
}

/** The reason a signal was aborted with, as an Error. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new AbortError();
}

export class AbortError extends Error {
  override readonly name = 'AbortError';
  constructor(message = 'stopped') {
    super(message);
  }
}

/** The longest delay a Node timer can take: above 2^31-1 ms (24.8 days) Node warns and waits 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A delay a timer can take as meant: negative or NaN becomes 0, anything above MAX_TIMER_MS (Infinity
 * included) becomes MAX_TIMER_MS. Delays computed from what a server sent (Retry-After, a reconnect
 * hint) must pass through this, or an absurd value turns into a 1 ms busy loop.
 */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}

/** Waits `ms` (clamped by `clampDelay`), or rejects with the abort reason as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, clampDelay(ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Settles like `work`, or rejects with the abort reason when `signal` aborts first (work that ignores signals cannot block us). */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {}); // it may still reject later; nobody listens any more
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
