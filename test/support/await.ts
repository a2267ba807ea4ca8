// Waiting in tests: for a condition to hold, and for a promise to reject.
import assert from 'node:assert/strict';

/**
 * Polls `condition` every 10 ms until it holds (no fixed sleeps: the machine may be busy); fails after
 * `timeoutMs`, naming what it waited for (`what` may be a function, to describe the state at that time).
 */
export async function until(condition: () => boolean, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whatever `promise` rejects with (an abort reason may be any value); fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

/** The Error `promise` rejects with; fails the test when it resolves or rejects with something else. */
export async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await rejection(promise);
  assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
  return error;
}
