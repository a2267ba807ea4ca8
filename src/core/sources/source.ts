import type { FlespiMessage } from '../message';

/** A batch of messages pulled from a source, in order. */
export interface SourceBatch {
  /** Increasing per source instance, for logs and events. */
  readonly seq: number;
  readonly messages: FlespiMessage[];
}

/** Where the receiver resumes after a restart. Sources that keep their position on the server (MQTT sessions) do not use it. */
export interface Checkpoint {
  /** REST style A: the `curr_key` to ask for next (the `next_key` after the last acknowledged batch). */
  currKey: number;
  /** REST by time: the `server.timestamp` of the last acknowledged message (absent in checkpoints written before reading by time). */
  time?: number;
  /** REST by time: fingerprints of the acknowledged messages stamped exactly `time`, skipped when reading from `time` again. */
  seen?: string[];
  /** ISO time of the save, for humans reading the file. */
  savedAt?: string;
}

/**
 * Where messages come from. The receiver calls `open`, then `next` repeatedly (it may call `next`
 * again before the previous batch is acknowledged: prefetch), and for each batch in order
 * `checkpointAfter` + `ack` once every handler succeeded.
 */
export interface Source {
  readonly description: string;
  open(checkpoint: Checkpoint | undefined): Promise<void>;
  /** Resolves with the next non-empty batch. Rejects with an AbortError when `signal` aborts. */
  next(signal: AbortSignal): Promise<SourceBatch>;
  /** The checkpoint to persist once `batch` is done, or undefined when the source keeps its position itself. */
  checkpointAfter(batch: SourceBatch): Checkpoint | undefined;
  /** Tell the server that `batch` is done (REST: delete if configured; MQTT: PUBACK). Called after the checkpoint was saved. */
  ack(batch: SourceBatch): Promise<void>;
  close(): Promise<void>;
}
