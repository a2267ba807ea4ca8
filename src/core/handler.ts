import type { FlespiMessage } from './message';
import { silentLogger, type Logger } from './logger';

/** What a handler gets with each batch. */
export interface HandlerContext {
  /** Aborted when the receiver stops or this attempt timed out: stop work and throw. */
  readonly signal: AbortSignal;
  /** 1 for the first delivery of this batch to this handler, 2 for the first retry, ... */
  readonly attempt: number;
  readonly log: Logger;
  /**
   * Says that `messages[index]` can never be delivered by this handler (it cannot be encoded, the
   * sink refused it for good): the receiver records it in the dead-letter store with `reason`, and
   * handle() should go on with the others and resolve once they are accepted.
   */
  reject(index: number, reason: unknown): void;
}

/**
 * What happens to a message this handler can never deliver (see UndeliverableError):
 * - `dead-letter` (default): it is recorded in the dead-letter store with the reason; the rest goes on.
 * - `stop`: the receiver stops with the error, the batch unacknowledged (fix, then run again).
 * - `retry`: it is retried with backoff forever, holding up the channel (the behaviour before 0.2).
 */
export type UndeliverablePolicy = 'dead-letter' | 'stop' | 'retry';
export const undeliverablePolicies: readonly UndeliverablePolicy[] = ['dead-letter', 'stop', 'retry'];

/** Live state a handler may report (shown by the CLI and the extension's Sinks tree). */
export interface HandlerHealth {
  /** true/false for handlers that hold a connection; undefined for connectionless ones. */
  connected?: boolean;
  /** One line about the current state, e.g. "3 packets awaiting ack". */
  detail?: string;
}

/**
 * The extension point: a sink that flespi messages are forwarded to.
 *
 * Lifecycle: `start()` once (connect), then `handle()` for each batch, then `stop()` once.
 * `handle()` resolves when the sink has accepted every message of the batch (but those it named
 * with `ctx.reject`), and throws to report failure. What the receiver does then depends on the error
 * (see `classifyFailure`): a `TransientError` or a network error is retried with backoff for as long
 * as it takes; an `UndeliverableError` makes the receiver split the batch to find the messages at
 * fault and dead-letter them; any other error is retried a few times and then treated the same way.
 * A batch is never acknowledged to flespi before every handler accepted or dead-lettered each message.
 *
 * ```ts
 * export default class CountHandler extends Handler {
 *   count = 0;
 *   async handle(messages: readonly FlespiMessage[]) { this.count += messages.length; }
 * }
 * ```
 */
export abstract class Handler {
  /** Shown in logs, status and errors. Defaults to the class name. */
  readonly name: string;
  /** Set from the handler's configuration entry (`onUndeliverable`). */
  onUndeliverable: UndeliverablePolicy = 'dead-letter';
  protected log: Logger = silentLogger;

  constructor(name?: string) {
    this.name = name ?? this.constructor.name;
  }

  /** Called by the receiver before start(), so handlers can log through the host's logger. */
  attachLogger(log: Logger): void {
    this.log = log;
  }

  /** Connect to the sink. Throw an Error whose message says what to fix (a bad setting, a file). */
  async start(): Promise<void> {}

  /** Deliver one batch. Resolve only when the sink has accepted all of it; throw to have it retried. */
  abstract handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void>;

  /** Disconnect and release resources. Called once; must not throw. */
  async stop(): Promise<void> {}

  /** Current state for status displays. */
  health(): HandlerHealth {
    return {};
  }

  /**
   * Optional, for "Test Sink Connection": after start(), reach the sink with something it cannot take
   * for a message (never data) and say what it answered, e.g. `answered 200 OK to an empty batch`.
   * Throw when it cannot be reached or refuses. Undefined: start() alone shows the sink works.
   */
  async probe(_signal: AbortSignal): Promise<string | undefined> {
    return undefined;
  }
}
