import { EventEmitter } from 'node:events';
import { FlespiError, classifyFailure, errorMessage } from '../errors';
import type { Handler, HandlerHealth } from '../handler';
import type { FlespiMessage } from '../message';
import { silentLogger, type Logger } from '../logger';
import { ConfigError } from '../options';
import type { Checkpoint, Source, SourceBatch } from '../sources/source';
import { AbortError, abortReason, backoffDelay, defaultRetry, raceAbort, sleep, type RetryOptions } from '../backoff';
import { MemoryCheckpointStore, type CheckpointStore } from './checkpoint';
import { MemoryDeadLetterStore, type DeadLetter, type DeadLetterStore } from './deadLetters';

export type ReceiverState = 'starting' | 'running' | 'retrying' | 'stopping' | 'stopped' | 'failed';

export interface ReceiverOptions {
  source: Source;
  handlers: readonly Handler[];
  /** Where the position is kept between runs; default: in memory only. */
  checkpoints?: CheckpointStore;
  /** Batches fetched ahead of the one being handled (default 1). 0 = fetch only after the previous batch is done. */
  prefetch?: number;
  /** One handler attempt (handle or start) that takes longer is aborted and retried (default 60 s). */
  handlerTimeoutMs?: number;
  /** Backoff between retries of handlers and the source (default 500 ms doubling to 30 s, with jitter). */
  retry?: Partial<RetryOptions>;
  /** On stop, how long in-flight handler attempts may still finish before they are aborted (default 5 s). */
  stopGraceMs?: number;
  /** Where messages a handler can never deliver are recorded, with why (default: in memory). */
  deadLetters?: DeadLetterStore;
  /** Failed attempts of a batch with an unclassified error before it is split to find the messages at fault (default 2). */
  splitAfter?: number;
  /**
   * What an HTTP 403 from flespi does: `retry` (default) keeps the receiver in state 'retrying' with
   * `stats().blocked` set, retrying with `blockedRetry` backoff until flespi lets it through again
   * (flespi blocks accounts and items for a while when a limit is hit); `stop` stops the receiver
   * with the error (an interactive command). A 401 always stops it.
   */
  onForbidden?: 'retry' | 'stop';
  /** Backoff while blocked by flespi (default 5 s doubling to 5 min, with jitter). */
  blockedRetry?: Partial<RetryOptions>;
  log?: Logger;
}

/** Backoff while flespi answers 403: a block lasts minutes to hours, so retries start slower and end rarer than for an outage. */
export const defaultBlockedRetry: RetryOptions = { initialMs: 5_000, maxMs: 300_000 };

export interface HandlerStats {
  name: string;
  /** true once start() succeeded. */
  started: boolean;
  messages: number;
  batches: number;
  failures: number;
  consecutiveFailures: number;
  lastError?: string;
  lastLatencyMs?: number;
  /** Moving average of successful attempts' latency. */
  avgLatencyMs?: number;
  /** Messages of this handler in the dead-letter store (including earlier runs). */
  deadLetters: number;
  health: HandlerHealth;
}

export interface ReceiverStats {
  state: ReceiverState;
  source: string;
  batchesFetched: number;
  messagesFetched: number;
  batchesDone: number;
  messagesDone: number;
  /** Batches fetched but not yet done, including the one being handled. */
  pending: number;
  lastCheckpoint?: Checkpoint;
  lastSourceError?: string;
  /** Set while flespi refuses the receiver with 403: `blocked by flespi: <reason>`; cleared once a request passes again. */
  blocked?: string;
  /** Where dead letters go (a file path, or "memory"). */
  deadLetterStore: string;
  handlers: HandlerStats[];
}

export interface BatchEvent {
  seq: number;
  messages: number;
  pending: number;
}

export interface DoneEvent {
  seq: number;
  messages: number;
  /** From the batch arriving to its acknowledgement. */
  latencyMs: number;
  checkpoint?: Checkpoint;
}

export interface HandlerErrorEvent {
  handler: string;
  /** 'start' when the handler could not start (it gets no batch until it does). */
  phase: 'start' | 'handle';
  /** The batch, for phase 'handle'. */
  seq?: number;
  attempt: number;
  error: Error;
  /** When the next attempt starts; undefined when the receiver is stopping. */
  retryInMs?: number;
  /** How the receiver took the error (see classifyFailure); 'isolating' when it splits the batch to find the messages at fault. */
  verdict?: 'retry' | 'isolating' | 'dead-letter';
  /** Messages in the failed attempt (less than the batch while isolating). */
  messages?: number;
  /** True when this error stops the receiver (a ConfigError from start(), or onUndeliverable "stop"); `done` rejects with it. */
  fatal?: boolean;
}

export interface DeadLetterEvent {
  handler: string;
  seq: number;
  /** The letters just recorded (one per message). */
  letters: readonly DeadLetter[];
  /** This handler's letters in the store now. */
  total: number;
}

export interface SourceErrorEvent {
  /** What the receiver was doing: opening the source, fetching, saving the checkpoint or acknowledging. */
  phase: 'open' | 'fetch' | 'checkpoint' | 'ack';
  error: Error;
  /** When the next attempt starts; undefined when the error stops the receiver. */
  retryInMs?: number;
  fatal: boolean;
  /** Set when flespi refused with 403 and the receiver waits it out: `blocked by flespi: <reason>`. */
  blocked?: string;
}

export interface ReceiverEvents {
  state: [state: ReceiverState];
  /** A batch was fetched. */
  batch: [event: BatchEvent];
  /** A batch was handled by every handler, checkpointed and acknowledged. */
  done: [event: DoneEvent];
  'handler-error': [event: HandlerErrorEvent];
  /** Messages a handler can never deliver were recorded in the dead-letter store; the rest goes on. */
  'dead-letter': [event: DeadLetterEvent];
  'source-error': [event: SourceErrorEvent];
  checkpoint: [checkpoint: Checkpoint];
}

/** A handler attempt that did not settle within `handlerTimeoutMs`. */
export class HandlerTimeoutError extends Error {
  override readonly name = 'HandlerTimeoutError';
}

/** Messages of a batch (indices into it) that one handler still has to take. */
interface Part {
  indices: number[];
  /** Failed attempts of this part. */
  failures: number;
  /** Failed attempts of the parts it was split from (every one of them included these messages). */
  failuresBefore: number;
  /** True when it is a half of a part that failed for reasons of its messages. */
  split: boolean;
  /** True once it was moved behind the rest of the batch. */
  rotated: boolean;
}

interface PendingBatch {
  batch: SourceBatch;
  fetchedAt: number;
}

/** A handler with its counters and the promise of its (retried) start. */
class HandlerRuntime {
  started = false;
  ready: Promise<boolean> = Promise.resolve(false);
  messages = 0;
  batches = 0;
  failures = 0;
  consecutiveFailures = 0;
  lastError?: string;
  lastLatencyMs?: number;
  avgLatencyMs?: number;
  deadLetters = 0;
  /** The backoff announced with the last handle() failure. */
  nextDelay?: number;

  constructor(
    readonly handler: Handler,
    readonly log: Logger,
  ) {}

  /** A handle() call succeeded (a whole batch, or a part of one while isolating a bad message). */
  succeeded(messages: number, latencyMs: number): void {
    this.messages += messages;
    this.consecutiveFailures = 0;
    this.lastLatencyMs = latencyMs;
    this.avgLatencyMs = this.avgLatencyMs === undefined ? latencyMs : this.avgLatencyMs * 0.8 + latencyMs * 0.2;
  }

  failed(error: Error): void {
    this.failures += 1;
    this.consecutiveFailures += 1;
    this.lastError = error.message;
  }

  stats(): HandlerStats {
    let health: HandlerHealth;
    try {
      health = this.handler.health();
    } catch (error) {
      health = { detail: `health() failed: ${errorMessage(error)}` };
    }
    const { name } = this.handler;
    const { started, messages, batches, failures, consecutiveFailures, lastError, lastLatencyMs, avgLatencyMs, deadLetters } = this;
    return { name, started, messages, batches, failures, consecutiveFailures, lastError, lastLatencyMs, avgLatencyMs, deadLetters, health };
  }
}

/** Resolves waiters each time something they may be waiting for changed (a batch arrived or finished, stop). */
class Changes {
  private waiters: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/**
 * Pulls batches from one source and runs every handler on every batch, at least once.
 *
 * - Every handler gets each batch concurrently; a batch is done when every handler accepted each of
 *   its messages or recorded it in the dead-letter store. Then its checkpoint is saved, then the
 *   source acknowledges it. Batches are done strictly in order; the next batch goes to handlers only then.
 * - A handler that fails a batch is treated by what the error says (see `classifyFailure`):
 *   transient errors (the sink is down, a timeout) are retried with backoff, forever; an
 *   UndeliverableError makes the receiver split the batch in halves, again and again, until the
 *   messages at fault are alone, and record those as dead letters (AWS Lambda's "bisect batch on
 *   function error"); an unclassified error is retried `splitAfter` times and then isolated the same
 *   way. An unclassified error of one message alone is recorded only once the handler accepted other
 *   messages of the batch (else the handler itself is failing, and it is retried as if transient), or
 *   when it is an engine error (TypeError, RangeError, ...) which the same input raises every time.
 *   Messages named with `ctx.reject` are recorded at once. The handler's `onUndeliverable` policy can
 *   instead stop the receiver, or retry forever. While isolating, the parts of one batch may reach a
 *   sink out of order.
 * - Up to `prefetch` batches are fetched ahead, so fetching overlaps handling; beyond that the
 *   receiver stops fetching until handlers catch up.
 * - A handler whose start() fails is retried with backoff like a failing batch; the batch waits for it.
 *   A ConfigError from start() (a setting the user must fix) stops the receiver with that error.
 * - Retryable source errors (rate limit, 5xx, network, timeouts, malformed answers, and errors that
 *   are not FlespiErrors) are retried with backoff (honouring Retry-After) and reported as
 *   'source-error'. Non-retryable ones (auth, forbidden, not found, bad request, ConfigError) stop
 *   the receiver: `start()` or `done` rejects with that error.
 * - `stop()` stops fetching, lets in-flight handler attempts finish for `stopGraceMs` and then aborts
 *   them, commits the in-flight batch only if every handler succeeded, then stops the handlers and
 *   closes the source. Prefetched batches are dropped unacknowledged: the next run fetches them again.
 */
export class Receiver extends EventEmitter<ReceiverEvents> {
  /** Resolves when the receiver stopped, rejects with the error that stopped it. */
  readonly done: Promise<void>;

  private readonly source: Source;
  private readonly runtimes: HandlerRuntime[];
  private readonly checkpoints: CheckpointStore;
  private readonly prefetch: number;
  private readonly handlerTimeoutMs: number;
  private readonly retry: RetryOptions;
  private readonly stopGraceMs: number;
  private readonly deadLetters: DeadLetterStore;
  private readonly splitAfter: number;
  private readonly onForbidden: 'retry' | 'stop';
  private readonly blockedRetry: RetryOptions;
  private readonly log: Logger;

  /** Aborted when stop begins: no more fetching, retries or new attempts. */
  private readonly stopping = new AbortController();
  /** Aborted when the stop grace period is over: in-flight handler attempts are cancelled. */
  private readonly aborting = new AbortController();
  private readonly changes = new Changes();
  private readonly queue: PendingBatch[] = [];
  private readonly troubles = new Set<string>();
  private loops: Promise<unknown> = Promise.resolve();
  private shutdownPromise?: Promise<void>;
  private settle!: { resolve: () => void; reject: (error: Error) => void };

  private currentState: ReceiverState = 'stopped';
  private begun = false;
  private batchesFetched = 0;
  private messagesFetched = 0;
  private batchesDone = 0;
  private messagesDone = 0;
  private lastCheckpoint?: Checkpoint;
  private lastSourceError?: string;
  private blocked?: string;

  constructor(options: ReceiverOptions) {
    super();
    this.source = options.source;
    this.log = options.log ?? silentLogger;
    this.checkpoints = options.checkpoints ?? new MemoryCheckpointStore();
    this.prefetch = Math.max(0, Math.floor(options.prefetch ?? 1));
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? 60_000;
    this.retry = { ...defaultRetry, ...options.retry };
    this.stopGraceMs = options.stopGraceMs ?? 5_000;
    this.deadLetters = options.deadLetters ?? new MemoryDeadLetterStore();
    this.splitAfter = Math.max(1, Math.floor(options.splitAfter ?? 2));
    this.onForbidden = options.onForbidden ?? 'retry';
    this.blockedRetry = { ...defaultBlockedRetry, ...options.blockedRetry };
    const names = new Set<string>();
    this.runtimes = options.handlers.map((handler) => {
      if (names.has(handler.name)) throw new ConfigError(`two handlers are named "${handler.name}": give each a different "name"`);
      names.add(handler.name);
      return new HandlerRuntime(handler, prefixed(this.log, handler.name));
    });
    this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // callers that only use start() must not see an unhandled rejection
  }

  get state(): ReceiverState {
    return this.currentState;
  }

  stats(): ReceiverStats {
    return {
      state: this.currentState,
      source: this.source.description,
      batchesFetched: this.batchesFetched,
      messagesFetched: this.messagesFetched,
      batchesDone: this.batchesDone,
      messagesDone: this.messagesDone,
      pending: this.queue.length,
      lastCheckpoint: this.lastCheckpoint,
      lastSourceError: this.lastSourceError,
      blocked: this.blocked,
      deadLetterStore: this.deadLetters.location,
      handlers: this.runtimes.map((r) => r.stats()),
    };
  }

  /**
   * Loads the checkpoint, opens the source (retrying transient errors) and starts the handlers and
   * the pipeline. Resolves once running and every handler made its first start attempt; rejects
   * with the error when the receiver cannot run (then `done` rejects with it too). Handlers whose
   * start failed for a reason that may pass are retried in the background.
   */
  async start(): Promise<void> {
    if (this.begun) throw new Error('a Receiver can only be started once; create a new one');
    this.begun = true;
    this.setState('starting');
    try {
      this.lastCheckpoint = await this.checkpoints.load();
      const counts = await this.deadLetters.counts();
      for (const runtime of this.runtimes) runtime.deadLetters = counts.get(runtime.handler.name) ?? 0;
      await this.withRetry('open', () => this.source.open(this.lastCheckpoint));
    } catch (error) {
      await this.shutdown(asError(error)); // no-op when stop() came first or the error already stopped us
      await this.done; // rejects when the error stopped the receiver
      return;
    }
    if (this.stopping.signal.aborted) return;
    const firstAttempts = this.runtimes.map((runtime) => {
      runtime.handler.attachLogger(runtime.log);
      let settled!: () => void;
      const first = new Promise<void>((resolve) => (settled = resolve));
      runtime.ready = this.startHandler(runtime, settled);
      return first;
    });
    this.updateRunningState();
    // An unexpected throw (a bug in a source's checkpointAfter, say) must stop the receiver visibly, not stall it.
    this.loops = Promise.all([this.fetchLoop(), this.handleLoop()].map((loop) => loop.catch((error: unknown) => void this.shutdown(asError(error)))));
    // Resolve once every handler tried to start, so a setting only start() finds wrong rejects start() itself.
    await Promise.race([Promise.all(firstAttempts), this.done.catch(() => {})]);
    if (this.stopping.signal.aborted) await this.done;
  }

  /** Graceful stop (see the class comment). Resolves when stopped; never rejects. */
  async stop(): Promise<void> {
    await this.shutdown(undefined);
  }

  private async fetchLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      if (this.queue.length > this.prefetch) {
        await this.changes.wait();
        continue;
      }
      try {
        const batch = await raceAbort(this.source.next(this.stopping.signal), this.stopping.signal);
        if (this.stopping.signal.aborted) return;
        failures = 0;
        this.unblocked();
        this.clearTrouble('source');
        this.queue.push({ batch, fetchedAt: performance.now() });
        this.batchesFetched += 1;
        this.messagesFetched += batch.messages.length;
        this.publish('batch', { seq: batch.seq, messages: batch.messages.length, pending: this.queue.length });
        this.changes.notify();
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        failures += 1;
        if (!(await this.sourceFailed('fetch', asError(error), failures))) return;
      }
    }
  }

  private async handleLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      const head = this.queue[0];
      if (!head) {
        await this.changes.wait();
        continue;
      }
      const delivered = await Promise.all(this.runtimes.map((runtime) => this.deliver(runtime, head.batch)));
      if (!delivered.every(Boolean)) return; // stopping; the batch stays unacknowledged
      if (!(await this.commit(head.batch))) return;
      this.queue.shift();
      this.batchesDone += 1;
      this.messagesDone += head.batch.messages.length;
      this.publish('done', {
        seq: head.batch.seq,
        messages: head.batch.messages.length,
        latencyMs: performance.now() - head.fetchedAt,
        checkpoint: this.lastCheckpoint,
      });
      this.changes.notify();
    }
  }

  /** Saves the checkpoint after `batch`, then acknowledges it. False when the receiver stops first. */
  private async commit(batch: SourceBatch): Promise<boolean> {
    const checkpoint = this.source.checkpointAfter(batch);
    try {
      if (checkpoint) {
        const saved = { ...checkpoint, savedAt: new Date().toISOString() };
        await this.withRetry('checkpoint', () => this.checkpoints.save(saved));
        this.lastCheckpoint = saved;
        this.publish('checkpoint', saved);
      }
      await this.withRetry('ack', () => this.source.ack(batch));
      return true;
    } catch (error) {
      if (!this.stopping.signal.aborted) void this.shutdown(asError(error));
      return false;
    }
  }

  /**
   * Runs `work` until it succeeds, retrying retryable errors with backoff. While stopping it gets a
   * single attempt (a batch that every handler accepted should still be committed). Throws the
   * fatal error, or the abort reason when stopped during a backoff.
   */
  private async withRetry(phase: SourceErrorEvent['phase'], work: () => Promise<void>): Promise<void> {
    for (let failures = 1; ; failures++) {
      try {
        await work();
        if (failures > 1) {
          this.unblocked();
          this.clearTrouble('source');
        }
        return;
      } catch (error) {
        if (this.stopping.signal.aborted) throw asError(error);
        if (!(await this.sourceFailed(phase, asError(error), failures))) throw asError(error);
      }
    }
  }

  /** Reports a source-side error; waits the backoff and returns true if it is worth retrying, else stops the receiver. */
  private async sourceFailed(phase: SourceErrorEvent['phase'], error: Error, failures: number): Promise<boolean> {
    this.lastSourceError = error.message;
    // HTTP 403: blocked (often for a while) or not allowed; a 200 whose errors say "ACL" (code 3) is a setting, never waited out.
    const forbidden = error instanceof FlespiError && error.kind === 'forbidden' && error.status === 403 && this.onForbidden === 'retry';
    if (!forbidden && !isRetryable(error)) {
      this.publish('source-error', { phase, error, fatal: true });
      void this.shutdown(error);
      return false;
    }
    let delay = backoffDelay(forbidden ? this.blockedRetry : this.retry, failures);
    if (error instanceof FlespiError && error.retryAfter !== undefined) delay = Math.max(delay, error.retryAfter * 1000);
    if (forbidden) this.blocked = `blocked by flespi: ${blockReason(error)}`;
    this.setTrouble('source');
    this.publish('source-error', { phase, error, retryInMs: delay, fatal: false, blocked: forbidden ? this.blocked : undefined });
    try {
      await sleep(delay, this.stopping.signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Starts one handler, retrying with backoff until it succeeds (a sink that is down now may be up
   * later). A ConfigError from start() is a setting the user must fix (a missing certificate file,
   * say): retrying cannot help, so it stops the receiver. False when the receiver stops first.
   */
  private async startHandler(runtime: HandlerRuntime, firstAttemptSettled: () => void): Promise<boolean> {
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.attempt(runtime, () => runtime.handler.start(), 'start');
        runtime.started = true;
        this.clearTrouble(`handler:${runtime.handler.name}`);
        return true;
      } catch (error) {
        if (error instanceof ConfigError && !this.aborting.signal.aborted) {
          runtime.failed(error);
          this.publish('handler-error', { handler: runtime.handler.name, phase: 'start', attempt, error, fatal: true });
          void this.shutdown(error);
          return false;
        }
        const retrying = this.handlerFailed(runtime, 'start', undefined, attempt, asError(error)); // reports at once
        firstAttemptSettled();
        if (!(await retrying)) return false;
      } finally {
        firstAttemptSettled();
      }
    }
    firstAttemptSettled();
    return false;
  }

  /**
   * Gives `batch` to one handler until it accepted or dead-lettered each message (see the class
   * comment). Parts of the batch wait in `pending`: the whole batch at first, then halves of the
   * parts that fail for reasons of their messages. False when the receiver stops first.
   */
  private async deliver(runtime: HandlerRuntime, batch: SourceBatch): Promise<boolean> {
    if (!(await runtime.ready)) return false;
    const all = batch.messages;
    const policy = runtime.handler.onUndeliverable;
    const pending: Part[] = [{ indices: all.map((_, i) => i), failures: 0, failuresBefore: 0, split: false, rotated: false }];
    let attempt = 0;
    let failed = false; // some attempt of this batch failed
    let acceptedSinceFailure = false; // ... and the handler accepted another part since: it works, so failures are about messages
    const halve = (part: Part) => {
      const middle = Math.ceil(part.indices.length / 2);
      const child = (indices: number[]): Part => ({ indices, failures: 0, failuresBefore: part.failuresBefore + part.failures, split: true, rotated: false });
      pending.splice(pending.indexOf(part), 1, child(part.indices.slice(0, middle)), child(part.indices.slice(middle)));
    };
    while (pending.length > 0) {
      if (this.stopping.signal.aborted) return false;
      const part = pending[0]!;
      if (part.rotated && part.failures > 0 && acceptedSinceFailure && part.indices.length > 1) {
        halve(part); // it failed before the handler proved it works; now it has: no need to fail it again
        continue;
      }
      const messages = part.indices.length === all.length ? all : part.indices.map((i) => all[i]!);
      const rejected = new Map<number, unknown>();
      const reject = (index: number, reason: unknown) => {
        if (!Number.isInteger(index) || index < 0 || index >= messages.length)
          throw new RangeError(`reject(${index}): no such message in this batch of ${messages.length}`);
        if (!rejected.has(index)) rejected.set(index, reason);
      };
      attempt += 1;
      const began = performance.now();
      try {
        await this.attempt(runtime, (signal) => runtime.handler.handle(messages, { attempt, log: runtime.log, signal, reject }), 'handle');
      } catch (error) {
        if (this.aborting.signal.aborted) return false; // cancelled by stop, not a failure of the handler
        const cause = asError(error);
        part.failures += 1;
        failed = true;
        const kind = policy === 'retry' ? 'transient' : classifyFailure(cause);
        // Is it these messages? Certain for an UndeliverableError or an engine error; for other errors, once the handler took other messages meanwhile.
        const conclusive = kind === 'undeliverable' || isEngineError(cause) || acceptedSinceFailure;
        const isolate = kind !== 'transient' && (kind === 'undeliverable' || part.failures >= (part.split ? 1 : this.splitAfter));
        if (isolate && !conclusive && part.split && !part.rotated && pending.length > 1) {
          // Nothing proves yet that the handler works at all: let the rest of the batch show it first.
          this.reportHandlerError(runtime, batch.seq, attempt, cause, messages.length, 'isolating', 0);
          part.rotated = true;
          pending.push(pending.shift()!);
          continue;
        }
        if (isolate && part.indices.length > 1) {
          // Split in halves; when it is not conclusive, back off first, so a sink that is down is not hammered.
          this.reportHandlerError(runtime, batch.seq, attempt, cause, messages.length, 'isolating', conclusive ? 0 : undefined);
          halve(part);
          if (!conclusive && !(await this.backoff(runtime))) return false;
          continue;
        }
        if (isolate && conclusive) {
          // One message that this handler cannot take, while it takes others.
          this.reportHandlerError(runtime, batch.seq, attempt, cause, 1, 'dead-letter', 0);
          if (!(await this.undeliverable(runtime, batch, [{ message: messages[0]!, error: cause, attempts: part.failuresBefore + part.failures }])))
            return false;
          pending.shift();
          continue;
        }
        this.reportHandlerError(runtime, batch.seq, attempt, cause, messages.length, 'retry', undefined);
        if (!(await this.backoff(runtime))) return false;
        continue;
      }
      runtime.succeeded(messages.length - rejected.size, performance.now() - began);
      this.clearTrouble(`handler:${runtime.handler.name}`);
      pending.shift();
      if (failed) acceptedSinceFailure = true;
      if (rejected.size === 0) continue;
      if (policy === 'retry') {
        // Rejected messages are retried like failures, forever, as this handler's policy asks.
        const error = new Error(`${rejected.size} message(s) rejected: ${errorMessage([...rejected.values()][0])}`);
        pending.push({
          indices: [...rejected.keys()].map((i) => part.indices[i]!),
          failures: 1,
          failuresBefore: part.failuresBefore + part.failures,
          split: true,
          rotated: true,
        });
        this.reportHandlerError(runtime, batch.seq, attempt, error, rejected.size, 'retry', undefined);
        if (!(await this.backoff(runtime))) return false;
        continue;
      }
      const letters = [...rejected].map(([index, reason]) => ({
        message: messages[index]!,
        error: asError(reason),
        attempts: part.failuresBefore + part.failures + 1,
      }));
      if (!(await this.undeliverable(runtime, batch, letters))) return false;
    }
    runtime.batches += 1;
    return true;
  }

  /**
   * Records messages a handler can never deliver, or stops the receiver when its policy says so.
   * A full store is retried with backoff (the messages stay unacknowledged). False when the receiver stops.
   */
  private async undeliverable(
    runtime: HandlerRuntime,
    batch: SourceBatch,
    failures: readonly { message: FlespiMessage; error: Error; attempts: number }[],
  ): Promise<boolean> {
    const name = runtime.handler.name;
    if (runtime.handler.onUndeliverable === 'stop') {
      const first = failures[0]!;
      const error = new Error(
        `${name} cannot deliver a message (${first.error.message}); its onUndeliverable policy is "stop", so the receiver stopped with the batch unacknowledged: fix the cause, or set onUndeliverable to "dead-letter"`,
        { cause: first.error },
      );
      this.publish('handler-error', { handler: name, phase: 'handle', seq: batch.seq, attempt: first.attempts, error, fatal: true });
      void this.shutdown(error);
      return false;
    }
    const time = new Date().toISOString();
    const letters: DeadLetter[] = failures.map(({ message, error, attempts }) => ({
      time,
      handler: name,
      error: error.message,
      errorName: error.name,
      attempts,
      source: this.source.description,
      message,
    }));
    for (let tries = 1; ; tries++) {
      try {
        await this.deadLetters.add(letters);
        break;
      } catch (error) {
        this.reportHandlerError(runtime, batch.seq, tries, asError(error), letters.length, 'retry', undefined);
        if (!(await this.backoff(runtime))) return false;
      }
    }
    runtime.deadLetters += letters.length;
    runtime.log.warn(`${letters.length} message(s) dead-lettered in ${this.deadLetters.location} (${letters[0]!.error}); ${runtime.deadLetters} in total`);
    this.publish('dead-letter', { handler: name, seq: batch.seq, letters, total: runtime.deadLetters });
    return true;
  }

  private reportHandlerError(
    runtime: HandlerRuntime,
    seq: number,
    attempt: number,
    error: Error,
    messages: number,
    verdict: HandlerErrorEvent['verdict'],
    retryInMs: number | undefined,
  ): void {
    runtime.failed(error);
    const stopping = this.stopping.signal.aborted;
    if (!stopping) this.setTrouble(`handler:${runtime.handler.name}`);
    const delay = stopping ? undefined : (retryInMs ?? backoffDelay(this.retry, runtime.consecutiveFailures));
    runtime.nextDelay = delay;
    this.publish('handler-error', { handler: runtime.handler.name, phase: 'handle', seq, attempt, error, retryInMs: delay, verdict, messages });
  }

  /** Waits the delay the last reportHandlerError announced. False when the receiver stops. */
  private async backoff(runtime: HandlerRuntime): Promise<boolean> {
    const delay = runtime.nextDelay;
    if (delay === undefined) return false;
    try {
      await sleep(delay, this.stopping.signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Counts and reports a handler failure, then waits its backoff. False when the receiver stops. */
  private async handlerFailed(
    runtime: HandlerRuntime,
    phase: HandlerErrorEvent['phase'],
    seq: number | undefined,
    attempt: number,
    error: Error,
  ): Promise<boolean> {
    if (this.aborting.signal.aborted) return false; // cancelled by stop, not a failure of the handler
    runtime.failed(error);
    const stopping = this.stopping.signal.aborted;
    const retryInMs = stopping ? undefined : backoffDelay(this.retry, runtime.consecutiveFailures);
    if (!stopping) this.setTrouble(`handler:${runtime.handler.name}`);
    this.publish('handler-error', { handler: runtime.handler.name, phase, seq, attempt, error, retryInMs });
    if (retryInMs === undefined) return false;
    try {
      await sleep(retryInMs, this.stopping.signal);
      return true;
    } catch {
      return false;
    }
  }

  /** One call into handler code: sync throws are caught, and it is abandoned on timeout or when stop aborts. */
  private async attempt(runtime: HandlerRuntime, call: (signal: AbortSignal) => Promise<void>, what: string): Promise<void> {
    const controller = new AbortController();
    const timeout = this.handlerTimeoutMs;
    const timer = setTimeout(
      () => controller.abort(new HandlerTimeoutError(`${runtime.handler.name}: ${what}() did not finish within ${timeout} ms (handlerTimeoutMs)`)),
      timeout,
    );
    const onStop = () => controller.abort(abortReason(this.aborting.signal));
    this.aborting.signal.addEventListener('abort', onStop, { once: true });
    try {
      if (this.aborting.signal.aborted) throw abortReason(this.aborting.signal);
      await raceAbort(new Promise<void>((resolve) => resolve(call(controller.signal))), controller.signal);
    } finally {
      clearTimeout(timer);
      this.aborting.signal.removeEventListener('abort', onStop);
    }
  }

  private shutdown(fatal: Error | undefined): Promise<void> {
    if (!this.shutdownPromise) this.shutdownPromise = this.runShutdown(fatal);
    return this.shutdownPromise;
  }

  private async runShutdown(fatal: Error | undefined): Promise<void> {
    const wasRunning = this.begun;
    this.setState('stopping');
    this.stopping.abort(new AbortError('the receiver is stopping'));
    this.changes.notify();
    const grace = setTimeout(() => this.aborting.abort(new AbortError('the receiver stopped: handler attempt cancelled')), this.stopGraceMs);
    await this.loops.catch(() => {});
    clearTimeout(grace);
    this.aborting.abort(new AbortError('the receiver stopped'));
    const started = await Promise.all(this.runtimes.map((r) => r.ready));
    await Promise.all(
      this.runtimes.map(async (runtime, i) => {
        if (!started[i]) return;
        try {
          await raceAbort(runtime.handler.stop(), AbortSignal.timeout(this.stopGraceMs));
        } catch (error) {
          runtime.log.warn(`stop() failed: ${errorMessage(error)}`);
        }
      }),
    );
    if (wasRunning) {
      try {
        await this.source.close();
      } catch (error) {
        this.log.warn(`closing ${this.source.description} failed: ${errorMessage(error)}`);
      }
    }
    this.queue.length = 0;
    this.setState(fatal ? 'failed' : 'stopped');
    if (fatal) this.settle.reject(fatal);
    else this.settle.resolve();
  }

  /** Listener bugs (a CLI or UI callback that throws) must not break the pipeline. */
  private publish<K extends keyof ReceiverEvents>(event: K, ...args: ReceiverEvents[K]): void {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    } catch (error) {
      this.log.warn(`a '${event}' listener failed: ${errorMessage(error)}`);
    }
  }

  /** A request passed: a block by flespi (if any) is over. */
  private unblocked(): void {
    if (this.blocked === undefined) return;
    this.log.info(`flespi lets the receiver through again (${this.blocked.replace(/^blocked by flespi: /, 'it was blocked: ')})`);
    this.blocked = undefined;
  }

  private setTrouble(key: string): void {
    this.troubles.add(key);
    this.updateRunningState();
  }

  private clearTrouble(key: string): void {
    if (this.troubles.delete(key)) this.updateRunningState();
  }

  private updateRunningState(): void {
    if (this.stopping.signal.aborted) return;
    this.setState(this.troubles.size > 0 ? 'retrying' : 'running');
  }

  private setState(state: ReceiverState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.publish('state', state);
  }
}

/** What flespi said when it refused with 403: the envelope's reasons, else the status. */
function blockReason(error: FlespiError): string {
  const reasons = error.details.map((d) => d.reason).filter((r): r is string => typeof r === 'string' && r !== '');
  return reasons.length > 0 ? reasons.join('; ') : `${error.status ?? 403} Forbidden`;
}

/** Errors worth retrying without the user changing anything. */
function isRetryable(error: Error): boolean {
  if (error instanceof FlespiError) return error.retryable;
  return !(error instanceof ConfigError);
}

/** Errors the JavaScript engine raises for the same input every time: a bug meeting a message it does not expect, not a sink that is down. */
function isEngineError(error: Error): boolean {
  return (
    error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError || error instanceof ReferenceError || error instanceof URIError
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function prefixed(log: Logger, name: string): Logger {
  return {
    debug: (m) => log.debug(`${name}: ${m}`),
    info: (m) => log.info(`${name}: ${m}`),
    warn: (m) => log.warn(`${name}: ${m}`),
    error: (m) => log.error(`${name}: ${m}`),
  };
}
