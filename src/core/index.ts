/**
 * The core library's public API: what handler files get (`./api`), plus what programs that embed
 * the receiver use. The package entry (`src/index.ts`) adds the sandbox.
 */
export * from './api';

export type { Source, SourceBatch, Checkpoint } from './sources/source';
export { RestSource, type RestSourceOptions } from './sources/rest';
export { MqttSource, MqttSessionTakenOverError, defaultClientId, type MqttSourceOptions, type MqttConnectionState } from './sources/mqtt';

export {
  Receiver,
  HandlerTimeoutError,
  type ReceiverOptions,
  type ReceiverState,
  type ReceiverStats,
  type ReceiverEvents,
  type HandlerStats,
  type BatchEvent,
  type DoneEvent,
  type HandlerErrorEvent,
  type SourceErrorEvent,
  type DeadLetterEvent,
} from './receiver/receiver';
export { FileCheckpointStore, MemoryCheckpointStore, CheckpointLockedError, type CheckpointStore } from './receiver/checkpoint';
export {
  FileDeadLetterStore,
  MemoryDeadLetterStore,
  DeadLetterStoreFullError,
  deadLetterPathFor,
  type DeadLetter,
  type DeadLetterStore,
} from './receiver/deadLetters';
export { FileLock, LockedError, type LockOwner } from './receiver/lock';
export type { RetryOptions } from './backoff';
export { deliverOnce, redeliverDeadLetters, type DeliveryOutcome, type RedeliveryOutcome } from './deliver';

export { builtinHandlerSpecs, handlerTypes, handlerSpec, createHandler, createHandlers } from './handlers/registry';
export {
  loadConfig,
  parseConfig,
  resolveToken,
  createSource,
  buildReceiver,
  type ReceiverConfig,
  type RestSourceConfig,
  type MqttSourceConfig,
} from './config';
