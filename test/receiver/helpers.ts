// Shared by the receiver, config and CLI tests: a quiet sandbox, numbered messages, a recording handler.
import { FlespiClient, type PollParams, type PollResult } from '../../src/core/flespi/client';
import { Handler, type HandlerContext } from '../../src/core/handler';
import type { FlespiMessage } from '../../src/core/message';
import type { Receiver } from '../../src/core/receiver/receiver';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';

export const CHANNEL = 1001;

/** A sandbox without simulated trackers: the channel holds exactly what a test injects. */
export function quietSandbox(): Promise<Sandbox> {
  return startSandbox({ restPort: 0, mqttPort: 0, simulate: false, devicesPerChannel: 1 });
}

/** Messages numbered `first`..`first+count-1` in the `test.seq` parameter. */
export function numbered(first: number, count: number): FlespiMessage[] {
  return Array.from({ length: count }, (_, i) => ({ ident: 'test-device', 'test.seq': first + i }));
}

export function seqs(messages: readonly FlespiMessage[]): number[] {
  return messages.map((m) => m['test.seq'] as number);
}

export function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

export type Behaviour = (messages: readonly FlespiMessage[], ctx: HandlerContext, call: number) => Promise<void> | void;

/** Records what it accepted; `behaviour` may throw, hang or wait before accepting. */
export class RecordingHandler extends Handler {
  /** `test.seq` of every message of every accepted batch, in order. */
  readonly accepted: number[] = [];
  readonly contexts: HandlerContext[] = [];
  calls = 0;
  starts = 0;
  stopped = false;

  constructor(
    name: string,
    private readonly behaviour?: Behaviour,
  ) {
    super(name);
  }

  // Not async on purpose: a behaviour that throws synchronously must reach the receiver as a sync throw.
  handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    this.calls += 1;
    this.contexts.push(ctx);
    const result = this.behaviour?.(messages, ctx, this.calls);
    return Promise.resolve(result).then(() => {
      this.accepted.push(...seqs(messages));
    });
  }

  override async stop(): Promise<void> {
    this.stopped = true;
  }
}

/** Resolves once `condition()` holds after a batch is done; rejects if the receiver stops first. */
export function until(receiver: Receiver, condition: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    if (condition()) return resolve();
    const check = () => {
      if (!condition()) return;
      receiver.off('done', check);
      resolve();
    };
    receiver.on('done', check);
    receiver.done.then(
      () => reject(new Error('the receiver stopped before the condition held')),
      (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
    );
  });
}

/** Resolves with the first event of `name` whose payload satisfies `match`. */
export function nextEvent<T>(
  receiver: Receiver,
  name: 'batch' | 'done' | 'handler-error' | 'source-error',
  match: (event: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => {
    const listener = (event: T) => {
      if (!match(event)) return;
      receiver.off(name, listener as never);
      resolve(event);
    };
    receiver.on(name, listener as never);
  });
}

/** A real FlespiClient that also counts the long-polls it made and how many came back empty. */
export class CountingClient extends FlespiClient {
  polls = 0;
  emptyPolls = 0;
  readonly currKeys: number[] = [];
  readonly deletes: number[] = [];

  override async pollChannelMessages(channelId: number, params: PollParams, signal?: AbortSignal): Promise<PollResult> {
    this.currKeys.push(params.currKey);
    const result = await super.pollChannelMessages(channelId, params, signal);
    this.polls += 1;
    if (result.messages.length === 0) this.emptyPolls += 1;
    return result;
  }

  override async deleteChannelMessages(channelId: number, deleteKey: number, signal?: AbortSignal): Promise<void> {
    await super.deleteChannelMessages(channelId, deleteKey, signal);
    this.deletes.push(deleteKey);
  }
}

export function fastRetry() {
  return { initialMs: 5, maxMs: 40 };
}
