/**
 * Continuous forwarding: one Receiver per channel, from flespi to the chosen sinks, running in the
 * extension host. The list of forwardings is persisted (through `deps.save`) so a window reload
 * resumes them from their checkpoints. No vscode here: tested against the sandbox.
 */
import { EventEmitter } from 'node:events';
import { errorMessage } from '../../core/errors';
import type { Handler } from '../../core/handler';
import type { Logger } from '../../core/logger';
import type { CheckpointStore } from '../../core/receiver/checkpoint';
import { Receiver, type HandlerErrorEvent, type HandlerStats, type ReceiverOptions, type ReceiverStats } from '../../core/receiver/receiver';
import type { Source } from '../../core/sources/source';

export interface ForwardingSpec {
  readonly channelId: number;
  readonly channelName: string;
  /** Sink names, as in `flespi.sinks`. */
  readonly sinks: readonly string[];
  /** The connection it belongs to ('sandbox', 'eu', ...): it resumes only there. */
  readonly connection: string;
}

/** What one receiver is built from; the host decides (source kind, checkpoint file, handlers). */
export interface ReceiverParts {
  source: Source;
  handlers: Handler[];
  checkpoints: CheckpointStore;
}

export interface ForwardingDeps {
  build(spec: ForwardingSpec): Promise<ReceiverParts>;
  /** Persists the list of forwardings (all of them, also those of other connections). */
  save(specs: readonly ForwardingSpec[]): PromiseLike<void> | void;
  log: Logger;
  /** Receiver tuning (tests shorten the retries). */
  receiverOptions?: Partial<Omit<ReceiverOptions, 'source' | 'handlers' | 'checkpoints' | 'log'>>;
}

export type ForwardingState = 'starting' | 'running' | 'retrying' | 'stopping' | 'failed';

/** One channel being forwarded (or one that failed and waits for the user). */
export class Forwarding {
  /** Set when the receiver stopped by itself. */
  error?: Error;
  private receiverRef?: Receiver;
  /** Messages acknowledged in earlier runs of this window (a restart creates a new receiver). */
  private carried = { messages: 0, perSink: new Map<string, { messages: number; failures: number }>() };

  constructor(readonly spec: ForwardingSpec) {}

  get receiver(): Receiver | undefined {
    return this.receiverRef;
  }

  get state(): ForwardingState {
    if (this.error) return 'failed';
    const state = this.receiverRef?.state ?? 'starting';
    return state === 'stopped' ? 'stopping' : state === 'failed' ? 'failed' : state;
  }

  /** Messages forwarded (acknowledged by every sink) since the forwarding started in this window. */
  get messagesForwarded(): number {
    return this.carried.messages + (this.receiverRef?.stats().messagesDone ?? 0);
  }

  stats(): ReceiverStats | undefined {
    return this.receiverRef?.stats();
  }

  /** The sink's counters in this forwarding, including earlier receivers of this window. */
  sinkStats(sink: string): (HandlerStats & { totalMessages: number; totalFailures: number }) | undefined {
    const current = this.receiverRef?.stats().handlers.find((h) => h.name === sink);
    const before = this.carried.perSink.get(sink) ?? { messages: 0, failures: 0 };
    if (!current) return undefined;
    return { ...current, totalMessages: before.messages + current.messages, totalFailures: before.failures + current.failures };
  }

  /** @internal */
  attach(receiver: Receiver): void {
    const previous = this.receiverRef?.stats();
    if (previous) {
      this.carried.messages += previous.messagesDone;
      for (const h of previous.handlers) {
        const before = this.carried.perSink.get(h.name) ?? { messages: 0, failures: 0 };
        this.carried.perSink.set(h.name, { messages: before.messages + h.messages, failures: before.failures + h.failures });
      }
    }
    this.receiverRef = receiver;
    this.error = undefined;
  }
}

export interface ForwardingEvents {
  /** Something changed: a forwarding started or stopped, a batch was done, a handler failed. */
  change: [];
  /** A receiver stopped by itself with this error (bad token, channel gone, ...). */
  failed: [forwarding: Forwarding, error: Error];
  'handler-error': [forwarding: Forwarding, event: HandlerErrorEvent];
}

export class ForwardingManager extends EventEmitter<ForwardingEvents> {
  private readonly active = new Map<number, Forwarding>();
  private specs: ForwardingSpec[];
  /** Serializes start/stop per manager so two clicks cannot start two receivers for one channel. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: ForwardingDeps,
    persisted: readonly ForwardingSpec[] = [],
  ) {
    super();
    this.specs = persisted.filter(isForwardingSpec);
  }

  /** Forwardings of this window (running, starting or failed). */
  list(): Forwarding[] {
    return [...this.active.values()];
  }

  get(channelId: number): Forwarding | undefined {
    return this.active.get(channelId);
  }

  /** Every persisted forwarding, including those of other connections. */
  persisted(): readonly ForwardingSpec[] {
    return this.specs;
  }

  /** Starts forwarding a channel (replacing a forwarding of the same channel) and persists it. */
  start(spec: ForwardingSpec): Promise<Forwarding> {
    return this.serialized(async () => {
      await this.halt(spec.channelId);
      this.specs = [...this.specs.filter((s) => s.channelId !== spec.channelId || s.connection !== spec.connection), spec];
      await this.deps.save(this.specs);
      return this.launch(new Forwarding(spec));
    });
  }

  /** Stops forwarding a channel for good (it will not resume after a reload). */
  stop(channelId: number): Promise<void> {
    return this.serialized(async () => {
      const forwarding = this.active.get(channelId);
      await this.halt(channelId);
      if (forwarding) this.specs = this.specs.filter((s) => !(s.channelId === channelId && s.connection === forwarding.spec.connection));
      await this.deps.save(this.specs);
    });
  }

  /** Stops every receiver but keeps the list, so they resume later (window closing, connection changing). */
  suspendAll(): Promise<void> {
    return this.serialized(async () => {
      await Promise.all([...this.active.keys()].map((id) => this.halt(id)));
    });
  }

  /** Starts the persisted forwardings of `connection` that are not running; returns those that could not start. */
  resume(connection: string): Promise<{ spec: ForwardingSpec; error: Error }[]> {
    return this.serialized(async () => {
      const problems: { spec: ForwardingSpec; error: Error }[] = [];
      for (const spec of this.specs.filter((s) => s.connection === connection && (this.active.get(s.channelId)?.state ?? 'failed') === 'failed')) {
        await this.halt(spec.channelId);
        const forwarding = await this.launch(new Forwarding(spec));
        if (forwarding.error) problems.push({ spec, error: forwarding.error });
      }
      return problems;
    });
  }

  /** Restarts the forwardings that use any of `sinks` (their settings or code changed), from their checkpoints. */
  restartUsing(sinks: readonly string[]): Promise<void> {
    return this.serialized(async () => {
      for (const forwarding of this.list().filter((f) => f.spec.sinks.some((s) => sinks.includes(s)))) {
        await this.halt(forwarding.spec.channelId, false);
        this.deps.log.info(`restarting forwarding of channel ${forwarding.spec.channelId} (sink changed)`);
        await this.launch(forwarding);
      }
    });
  }

  /** Takes a deleted sink out of every forwarding (of any connection); a forwarding left without sinks stops. */
  dropSink(sink: string): Promise<void> {
    return this.serialized(async () => {
      const affected = this.specs.filter((s) => s.sinks.includes(sink));
      if (affected.length === 0) return;
      this.specs = this.specs.flatMap((s) => (s.sinks.includes(sink) ? (s.sinks.length > 1 ? [{ ...s, sinks: s.sinks.filter((n) => n !== sink) }] : []) : [s]));
      await this.deps.save(this.specs);
      for (const spec of affected) {
        const forwarding = this.active.get(spec.channelId);
        if (!forwarding || forwarding.spec.connection !== spec.connection) continue;
        await this.halt(spec.channelId);
        const updated = this.specs.find((s) => s.channelId === spec.channelId && s.connection === spec.connection);
        this.deps.log.info(`sink "${sink}" was removed: ${updated ? `forwarding channel ${spec.channelId} continues to ${updated.sinks.join(', ')}` : `forwarding channel ${spec.channelId} stopped`}`);
        if (updated) await this.launch(new Forwarding(updated));
      }
    });
  }

  /** How each forwarding that uses `sink` is doing. */
  sinkStatus(sink: string): { forwarding: Forwarding; stats?: ReturnType<Forwarding['sinkStats']> }[] {
    return this.list()
      .filter((f) => f.spec.sinks.includes(sink))
      .map((forwarding) => ({ forwarding, stats: forwarding.sinkStats(sink) }));
  }

  private async launch(forwarding: Forwarding): Promise<Forwarding> {
    const { spec } = forwarding;
    this.active.set(spec.channelId, forwarding);
    let receiver: Receiver;
    try {
      const parts = await this.deps.build(spec);
      receiver = new Receiver({ ...this.deps.receiverOptions, ...parts, log: prefixed(this.deps.log, `channel ${spec.channelId}`) });
    } catch (error) {
      return this.fail(forwarding, asError(error));
    }
    forwarding.attach(receiver);
    const changed = () => this.emit('change');
    receiver.on('state', changed);
    receiver.on('done', changed);
    receiver.on('handler-error', (event) => {
      this.emit('handler-error', forwarding, event);
      changed();
    });
    receiver.on('source-error', changed);
    receiver.done.then(changed, (error: unknown) => {
      if (forwarding.receiver === receiver) this.fail(forwarding, asError(error));
    });
    this.deps.log.info(`forwarding channel ${spec.channelId} (${spec.channelName}) to ${spec.sinks.join(', ')}`);
    this.emit('change');
    try {
      await receiver.start();
    } catch {
      // `done` rejected with the same error and marked the forwarding failed.
    }
    return forwarding;
  }

  private fail(forwarding: Forwarding, error: Error): Forwarding {
    if (forwarding.error) return forwarding;
    forwarding.error = error;
    this.deps.log.error(`forwarding of channel ${forwarding.spec.channelId} stopped: ${errorMessage(error)}`);
    this.emit('failed', forwarding, error);
    this.emit('change');
    return forwarding;
  }

  /** Stops the receiver of a channel (graceful: the batch in flight finishes and is checkpointed). */
  private async halt(channelId: number, forget = true): Promise<void> {
    const forwarding = this.active.get(channelId);
    if (!forwarding) return;
    if (forget) this.active.delete(channelId);
    const receiver = forwarding.receiver;
    if (receiver) {
      await receiver.stop();
      this.deps.log.info(`stopped forwarding channel ${channelId}`);
    }
    this.emit('change');
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }
}

function isForwardingSpec(value: unknown): value is ForwardingSpec {
  const spec = value as Partial<ForwardingSpec> | null;
  return (
    typeof spec === 'object' &&
    spec !== null &&
    Number.isInteger(spec.channelId) &&
    typeof spec.channelName === 'string' &&
    typeof spec.connection === 'string' &&
    Array.isArray(spec.sinks) &&
    spec.sinks.every((s) => typeof s === 'string')
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function prefixed(log: Logger, scope: string): Logger {
  return {
    debug: (m) => log.debug(`[${scope}] ${m}`),
    info: (m) => log.info(`[${scope}] ${m}`),
    warn: (m) => log.warn(`[${scope}] ${m}`),
    error: (m) => log.error(`[${scope}] ${m}`),
  };
}
