/** Delivery outside a receiver, once: test-forwarding selected messages, testing a sink connection, sending dead letters again. */
import { errorMessage } from './errors';
import type { Handler } from './handler';
import { silentLogger, type Logger } from './logger';
import type { FlespiMessage } from './message';
import type { DeadLetterStore } from './receiver/deadLetters';

export interface DeliveryOutcome {
  /** Messages the sink accepted: all but those it rejected as undeliverable, or 0 when handle() failed. */
  acknowledged: number;
  /** Messages the sink said it can never take, with why (their index in `messages`). */
  rejected: { index: number; reason: string }[];
  /** What went wrong, in order (start, handle, stop); empty on success. */
  errors: string[];
  ms: number;
}

/**
 * start(), handle(messages) and stop() on a fresh handler, with one deadline for start and
 * handle together. stop() always runs. Never throws: failures are in `errors`.
 */
export async function deliverOnce(
  handler: Handler,
  messages: readonly FlespiMessage[],
  options: { timeoutMs: number; log?: Logger; describeError?: (error: unknown) => string },
): Promise<DeliveryOutcome> {
  const log = options.log ?? silentLogger;
  const describe = options.describeError ?? errorMessage;
  const began = performance.now();
  const errors: string[] = [];
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no answer within ${options.timeoutMs / 1000} s`);
      abort.abort(error);
      reject(error);
    }, options.timeoutMs);
  });
  let acknowledged = 0;
  const rejected: DeliveryOutcome['rejected'] = [];
  const reject = (index: number, reason: unknown) => void rejected.push({ index, reason: describe(reason) });
  handler.attachLogger(log);
  try {
    await Promise.race([handler.start(), deadline]);
    await Promise.race([handler.handle(messages, { signal: abort.signal, attempt: 1, log, reject }), deadline]);
    acknowledged = messages.length - new Set(rejected.map((r) => r.index)).size;
  } catch (error) {
    errors.push(describe(error));
  } finally {
    clearTimeout(timer);
    deadline.catch(() => {});
  }
  try {
    await handler.stop();
  } catch (error) {
    errors.push(`stop: ${describe(error)}`);
  }
  return { acknowledged, rejected, errors, ms: Math.round(performance.now() - began) };
}

/**
 * start(), probe() and stop() on a fresh handler ("Test Sink Connection"); a handler that reports
 * itself disconnected, or whose probe throws, fails. `answer` is what the probe got (e.g. the HTTP
 * status). Never throws: the failure is in `error`.
 */
export async function connectOnce(
  handler: Handler,
  options: { timeoutMs: number; log?: Logger; describeError?: (error: unknown) => string },
): Promise<{ error?: string; answer?: string; ms: number }> {
  const describe = options.describeError ?? errorMessage;
  const began = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let error: string | undefined;
  let answer: string | undefined;
  handler.attachLogger(options.log ?? silentLogger);
  try {
    await Promise.race([
      handler.start(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`start() did not finish within ${options.timeoutMs / 1000} s`)), options.timeoutMs);
      }),
    ]);
    // Some handlers start without a connection and keep retrying (Wialon): their health says whether it worked.
    const health = handler.health();
    if (health.connected === false) error = `started, but not connected${health.detail ? `: ${health.detail}` : ''}`;
    else {
      // Connectionless sinks (HTTP) start without talking to anyone: the probe reaches them.
      const abort = new AbortController();
      const late = setTimeout(() => abort.abort(), options.timeoutMs);
      try {
        answer = await handler.probe(abort.signal);
      } finally {
        clearTimeout(late);
      }
    }
  } catch (e) {
    error = describe(e);
  } finally {
    clearTimeout(timer);
  }
  try {
    await handler.stop();
  } catch (e) {
    error ??= `stop: ${describe(e)}`;
  }
  return { error, answer: error ? undefined : answer, ms: Math.round(performance.now() - began) };
}

export interface RedeliveryOutcome {
  /** Letters the handler accepted now; they were removed from the store. */
  sent: number;
  /** Letters still in the store for this handler (rejected again, or the attempt failed). */
  remaining: number;
  /** Why some were not sent (the attempt's errors, and the reasons of messages rejected again). */
  errors: string[];
  ms: number;
}

/**
 * Sends a handler's dead letters again through a fresh instance of that handler (after the cause
 * was fixed), `batchSize` at a time. Letters it accepts are removed from the store; those it rejects
 * again, or all of a batch whose attempt failed, stay. Never throws for the handler's failures.
 */
export async function redeliverDeadLetters(
  store: DeadLetterStore,
  handlerName: string,
  createHandler: () => Promise<Handler> | Handler,
  options: { timeoutMs: number; batchSize?: number; log?: Logger; describeError?: (error: unknown) => string },
): Promise<RedeliveryOutcome> {
  const began = performance.now();
  const letters = await store.read(handlerName);
  const batchSize = options.batchSize ?? 500;
  const errors: string[] = [];
  let sent = 0;
  for (let i = 0; i < letters.length; i += batchSize) {
    const batch = letters.slice(i, i + batchSize);
    const outcome = await deliverOnce(
      await createHandler(),
      batch.map((l) => l.message),
      options,
    );
    errors.push(...outcome.errors, ...outcome.rejected.map((r) => `dead letter ${i + r.index + 1}: ${r.reason}`));
    if (outcome.errors.length > 0) continue;
    const rejected = new Set(outcome.rejected.map((r) => r.index));
    const accepted = batch.filter((_, index) => !rejected.has(index));
    await store.remove(accepted);
    sent += accepted.length;
  }
  return { sent, remaining: letters.length - sent, errors: [...new Set(errors)], ms: Math.round(performance.now() - began) };
}
