import type { FlespiMessage } from './message';
import { silentLogger, type Logger } from './logger';

/** What a handler gets with each batch. */
export interface HandlerContext {
  /** Aborted when the receiver stops or this attempt timed out: stop work and throw. */
  readonly signal: AbortSignal;
  /** 1 for the first delivery of this batch to this handler, 2 for the first retry, ... */
  readonly attempt: number;
  readonly log: Logger;
}

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
 * `handle()` resolves when the sink has accepted every message of the batch, and throws
 * to report failure: the receiver then retries the same batch with backoff (at-least-once),
 * and never acknowledges it to flespi before every handler succeeded.
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
}
