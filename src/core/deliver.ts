/** Sends messages to one handler once (the tail panel's "send to sink"). No vscode here: tested on its own. */
import { errorMessage } from '../../core/errors';
import type { Handler } from '../../core/handler';
import { silentLogger, type Logger } from '../../core/logger';
import type { FlespiMessage } from '../../core/message';

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
export async function deliverOnce(handler: Handler, messages: readonly FlespiMessage[], options: { timeoutMs: number; log?: Logger; describeError?: (error: unknown) => string }): Promise<DeliveryOutcome> {
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

/** start() then stop() on a fresh handler ("Test Sink Connection"); a handler that reports itself disconnected fails. Never throws: the failure is in `error`. */
export async function connectOnce(handler: Handler, options: { timeoutMs: number; log?: Logger; describeError?: (error: unknown) => string }): Promise<{ error?: string; ms: number }> {
  const describe = options.describeError ?? errorMessage;
  const began = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let error: string | undefined;
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
  return { error, ms: Math.round(performance.now() - began) };
}
