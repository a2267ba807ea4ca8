/**
 * Continuous forwarding: one Receiver per channel, from flespi to the chosen sinks, running in the
 * extension host. Each forwarding is persisted as its own record (`deps.records`) so a window
 * reload resumes it from its checkpoint, and windows never overwrite each other's forwardings.
 *
 * A forwarding runs in exactly one window: before starting it, a window takes the forwarding's lock
 * (`deps.lock`, a file shared by every window). When another live window holds it, the forwarding
 * is listed here as running elsewhere (state 'elsewhere', with the owner's pid) instead of being
 * started a second time; `adoptOrphans()` starts it here once that window is gone.
 * No vscode here: tested against the sandbox.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { errorMessage } from '../../core/errors';
import type { Handler } from '../../core/handler';
import type { Logger } from '../../core/logger';
import type { CheckpointStore } from '../../core/receiver/checkpoint';
import { describeOwner, LockedError, type FileLock, type LockOwner } from '../../core/receiver/lock';
import type { DeadLetterStore } from '../../core/receiver/deadLetters';
import {
  Receiver,
  type DeadLetterEvent,
  type HandlerErrorEvent,
  type HandlerStats,
  type ReceiverOptions,
  type ReceiverStats,
} from '../../core/receiver/receiver';
import type { Source } from '../../core/sources/source';

export interface ForwardingSpec {
  readonly channelId: number;
  readonly channelName: string;
  /** Sink names, as in `flespi.sinks`. */
  readonly sinks: readonly string[];
  /** The connection it belongs to ('sandbox', 'eu', ...): it resumes only there. */
  readonly connection: string;
  /**
   * Where its sinks are defined (the sink scope: user settings or one workspace): it resumes only in
   * windows with that scope, since sink names mean something else elsewhere. Absent in records from
   * before scopes: the first window that resumes it claims it.
   */
  readonly scope?: string;
  /**
   * The `curr_key` of the REST source while no checkpoint exists (what the user chose: from now, from
   * the oldest message, from a time). Absent: the oldest message in the buffer.
   */
  readonly startKey?: number;
}

/** What one receiver is built from; the host decides (source kind, checkpoint file, handlers). */
export interface ReceiverParts {
  source: Source;
  handlers: Handler[];
  checkpoints: CheckpointStore;
  /** Where messages a sink can never deliver are recorded (default: in memory). */
  deadLetters?: DeadLetterStore;
}

/** The persisted forwardings, shared with other windows: read fresh each time, written one record at a time. */
export interface ForwardingRecordStore {
  list(): Promise<ForwardingSpec[]>;
  put(spec: ForwardingSpec): Promise<void>;
  remove(key: Pick<ForwardingSpec, 'connection' | 'channelId'>): Promise<void>;
}

export interface ForwardingDeps {
  build(spec: ForwardingSpec): Promise<ReceiverParts>;
  records: ForwardingRecordStore;
  /** The lock a window must hold to run this forwarding (one per connection and channel); none: no exclusion. */
  lock?(spec: ForwardingSpec): FileLock;
  /** This window's sink scope now (see ForwardingSpec.scope); none: every record is this window's. */
  scope?(): string;
  log: Logger;
  /** Receiver tuning (tests shorten the retries). */
  receiverOptions?: Partial<Omit<ReceiverOptions, 'source' | 'handlers' | 'checkpoints' | 'log'>>;
}

export type ForwardingState = 'starting' | 'running' | 'retrying' | 'stopping' | 'failed' | 'elsewhere';

/** One channel being forwarded (or one that failed and waits for the user). */
export class Forwarding {
  /** Set when the receiver stopped by itself. */
  error?: Error;
  /** Set when another window runs it (holds its lock): who. */
  owner?: LockOwner;
  /** @internal The lock this window holds for it. */
  lock?: FileLock;
  private receiverRef?: Receiver;
  /** Messages acknowledged in earlier runs of this window (a restart creates a new receiver). */
  private carried = { messages: 0, perSink: new Map<string, { messages: number; failures: number }>() };

  constructor(readonly spec: ForwardingSpec) {}

  get receiver(): Receiver | undefined {
    return this.receiverRef;
  }

  get state(): ForwardingState {
    if (this.owner) return 'elsewhere';
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

  /** Where it runs when not here: `another window (pid 123, workspace "x")`. */
  get where(): string | undefined {
    const owner = this.owner;
    return owner && `another window (pid ${owner.pid}${owner.by ? `, ${owner.by}` : ''}${owner.hostname === hostname() ? '' : ` on ${owner.hostname}`})`;
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
  /** Messages a sink can never deliver were recorded in the forwarding's dead-letter store. */
  'dead-letter': [forwarding: Forwarding, event: DeadLetterEvent];
}

export class ForwardingManager extends EventEmitter<ForwardingEvents> {
  private readonly active = new Map<number, Forwarding>();
  /** Serializes start/stop per manager so two clicks cannot start two receivers for one channel. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ForwardingDeps) {
    super();
  }

  /** Forwardings of this window (running, starting or failed), and those another window runs ('elsewhere'). */
  list(): Forwarding[] {
    return [...this.active.values()];
  }

  get(channelId: number): Forwarding | undefined {
    return this.active.get(channelId);
  }

  /** Every persisted forwarding of this window's sink scope, of any connection. */
  async persisted(): Promise<ForwardingSpec[]> {
    return (await this.deps.records.list()).filter((spec) => this.inScope(spec));
  }

  /**
   * Starts forwarding a channel (replacing a forwarding of the same channel in this window) and
   * persists it. When another window runs this channel's forwarding, nothing changes: the result is
   * in state 'elsewhere' and says where.
   */
  start(spec: ForwardingSpec): Promise<Forwarding> {
    return this.serialized(async () => {
      const scoped = this.scoped(spec);
      const current = this.active.get(spec.channelId);
      const lock = current?.lock?.isHeld ? current.lock : await this.takeLock(scoped);
      if (lock && 'pid' in lock) {
        const elsewhere = new Forwarding(scoped);
        elsewhere.owner = lock;
        return elsewhere;
      }
      await this.halt(spec.channelId, false);
      await this.deps.records.put(scoped);
      const forwarding = new Forwarding(scoped);
      forwarding.lock = lock;
      return this.launch(forwarding);
    });
  }

  /** Stops forwarding a channel for good (it will not resume after a reload). Refuses for a forwarding another window runs. */
  stop(channelId: number): Promise<void> {
    return this.serialized(async () => {
      const forwarding = this.active.get(channelId);
      if (forwarding?.owner)
        throw new Error(`channel ${forwarding.spec.channelName} (#${channelId}) is forwarded in ${forwarding.where}: stop it in that window`);
      await this.halt(channelId);
      if (forwarding) await this.deps.records.remove(forwarding.spec);
    });
  }

  /** Stops every receiver and releases their locks but keeps the records, so they resume later (window closing, connection changing). */
  suspendAll(): Promise<void> {
    return this.serialized(async () => {
      await Promise.all([...this.active.keys()].map((id) => this.halt(id)));
    });
  }

  /** Starts the persisted forwardings of `connection` that are not running here; returns those that could not start. */
  resume(connection: string): Promise<{ spec: ForwardingSpec; error: Error }[]> {
    return this.serialized(async () => {
      const problems: { spec: ForwardingSpec; error: Error }[] = [];
      for (const spec of (await this.persisted()).filter((s) => s.connection === connection)) {
        const state = this.active.get(spec.channelId)?.state ?? 'failed';
        if (state !== 'failed' && state !== 'elsewhere') continue;
        const forwarding = await this.launchLocked(spec);
        if (forwarding.error) problems.push({ spec, error: forwarding.error });
      }
      return problems;
    });
  }

  /**
   * Forwardings another window ran: started here when that window is gone (its lock released or
   * stale), forgotten when it was stopped there (its record is gone). True while some remain elsewhere.
   */
  adoptOrphans(): Promise<boolean> {
    return this.serialized(async () => {
      const waiting = this.list().filter((f) => f.owner);
      if (waiting.length === 0) return false;
      const records = await this.persisted();
      for (const forwarding of waiting) {
        const spec = records.find((s) => s.channelId === forwarding.spec.channelId && s.connection === forwarding.spec.connection);
        if (!spec) {
          this.active.delete(forwarding.spec.channelId);
          this.emit('change');
          continue;
        }
        const next = await this.launchLocked(spec);
        if (!next.owner) this.deps.log.info(`channel ${spec.channelId} is no longer forwarded in ${forwarding.where}: forwarding it in this window`);
      }
      return this.list().some((f) => f.owner);
    });
  }

  /** Restarts the forwardings that use any of `sinks` (their settings or code changed), from their checkpoints. */
  restartUsing(sinks: readonly string[]): Promise<void> {
    return this.serialized(async () => {
      for (const forwarding of this.list().filter((f) => !f.owner && f.spec.sinks.some((s) => sinks.includes(s)))) {
        await this.halt(forwarding.spec.channelId, false);
        this.deps.log.info(`restarting forwarding of channel ${forwarding.spec.channelId} (sink changed)`);
        await this.launch(forwarding);
      }
    });
  }

  /** Takes a deleted sink out of every forwarding of this scope (of any connection); a forwarding left without sinks stops. */
  dropSink(sink: string): Promise<void> {
    return this.serialized(async () => {
      const affected = (await this.persisted()).filter((s) => s.sinks.includes(sink));
      if (affected.length === 0) return;
      for (const spec of affected) {
        if (spec.sinks.length > 1) await this.deps.records.put({ ...spec, sinks: spec.sinks.filter((n) => n !== sink) });
        else await this.deps.records.remove(spec);
      }
      for (const spec of affected) {
        const forwarding = this.active.get(spec.channelId);
        if (!forwarding || forwarding.owner || forwarding.spec.connection !== spec.connection) continue;
        const lock = forwarding.lock;
        await this.halt(spec.channelId, false);
        const updated = spec.sinks.length > 1 ? { ...spec, sinks: spec.sinks.filter((n) => n !== sink) } : undefined;
        this.deps.log.info(
          `sink "${sink}" was removed: ${updated ? `forwarding channel ${spec.channelId} continues to ${updated.sinks.join(', ')}` : `forwarding channel ${spec.channelId} stopped`}`,
        );
        if (updated) {
          const next = new Forwarding(updated);
          next.lock = lock;
          await this.launch(next);
        } else {
          this.active.delete(spec.channelId);
          await lock?.release();
          this.emit('change');
        }
      }
    });
  }

  /** How each forwarding that uses `sink` is doing. */
  sinkStatus(sink: string): { forwarding: Forwarding; stats?: ReturnType<Forwarding['sinkStats']> }[] {
    return this.list()
      .filter((f) => f.spec.sinks.includes(sink))
      .map((forwarding) => ({ forwarding, stats: forwarding.sinkStats(sink) }));
  }

  private inScope(spec: ForwardingSpec): boolean {
    const scope = this.deps.scope?.();
    return scope === undefined || spec.scope === undefined || spec.scope === scope;
  }

  /** The spec with this window's scope (a record from before scopes is claimed by the window that runs it). */
  private scoped(spec: ForwardingSpec): ForwardingSpec {
    const scope = this.deps.scope?.();
    return scope === undefined || spec.scope === scope ? spec : { ...spec, scope };
  }

  /** This window's lock of the forwarding, or the owner that holds it. Other errors propagate. */
  private async takeLock(spec: ForwardingSpec): Promise<FileLock | LockOwner | undefined> {
    const lock = this.deps.lock?.(spec);
    if (!lock) return undefined;
    try {
      await lock.acquire();
    } catch (error) {
      if (error instanceof LockedError) return error.owner;
      throw error;
    }
    if (lock.takenOverFrom)
      this.deps.log.info(`channel ${spec.channelId}: took over the forwarding of ${describeOwner(lock.takenOverFrom)}, which is no longer running`);
    return lock;
  }

  /** Starts a persisted forwarding here if no other window runs it; else lists it as running elsewhere. */
  private async launchLocked(spec: ForwardingSpec): Promise<Forwarding> {
    await this.halt(spec.channelId);
    let lock: FileLock | LockOwner | undefined;
    try {
      lock = await this.takeLock(spec);
    } catch (error) {
      const forwarding = new Forwarding(spec);
      this.active.set(spec.channelId, forwarding);
      return this.fail(forwarding, asError(error));
    }
    if (lock && 'pid' in lock) {
      const forwarding = new Forwarding(spec);
      forwarding.owner = lock;
      this.active.set(spec.channelId, forwarding);
      this.deps.log.info(`channel ${spec.channelId} (${spec.channelName}) is forwarded in ${forwarding.where}: not starting it here`);
      this.emit('change');
      return forwarding;
    }
    const scoped = this.scoped(spec);
    if (scoped !== spec) await this.deps.records.put(scoped);
    const forwarding = new Forwarding(scoped);
    forwarding.lock = lock;
    return this.launch(forwarding);
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
    receiver.on('dead-letter', (event) => {
      this.emit('dead-letter', forwarding, event);
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

  /**
   * Stops the receiver of a channel (graceful: the batch in flight finishes and is checkpointed).
   * `forget` also drops it from this window and releases its lock; without, the lock stays held for a restart.
   */
  private async halt(channelId: number, forget = true): Promise<void> {
    const forwarding = this.active.get(channelId);
    if (!forwarding) return;
    if (forget) this.active.delete(channelId);
    const receiver = forwarding.receiver;
    if (receiver) {
      await receiver.stop();
      this.deps.log.info(`stopped forwarding channel ${channelId}`);
    }
    if (forget) await forwarding.lock?.release();
    this.emit('change');
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }
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
