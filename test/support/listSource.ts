import { abortReason } from '../../src/core/backoff';
import type { FlespiMessage } from '../../src/core/message';
import type { Checkpoint, Source, SourceBatch } from '../../src/core/sources/source';

/** Hands out fixed batches, then waits: for messages flespi itself would never carry (a BigInt, a cycle, ...). */
export class ListSource implements Source {
  private seq = 0;
  constructor(
    private readonly batches: FlespiMessage[][],
    readonly description = 'a fixed list of messages',
  ) {}
  async open(): Promise<void> {}
  next(signal: AbortSignal): Promise<SourceBatch> {
    const messages = this.batches.shift();
    if (messages) return Promise.resolve({ seq: ++this.seq, messages });
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(abortReason(signal)), { once: true }));
  }
  // No position of its own; subclasses that have one return it.
  checkpointAfter(): Checkpoint | undefined {
    return undefined;
  }
  async ack(): Promise<void> {}
  async close(): Promise<void> {}
}
