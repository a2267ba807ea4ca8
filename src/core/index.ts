/**
 * flespi-receiver: the public library API, for handler authors (`import { Handler } from 'flespi-receiver'`)
 * and for programs that embed the receiver.
 */
export { Handler, undeliverablePolicies, type HandlerContext, type HandlerHealth, type UndeliverablePolicy } from './handler';
export { numberParam, stringParam, type FlespiMessage } from './message';
export { silentLogger, stderrLogger, type Logger } from './logger';
export { FlespiError, UndeliverableError, TransientError, classifyFailure, errorMessage, type FailureKind, type FlespiErrorKind, type FlespiErrorDetail } from './errors';
export { ConfigError, OptionReader, type Options } from './options';

export { FlespiClient, regionBaseUrl, type FlespiClientOptions, type FlespiRegion, type PollParams, type PollResult } from './flespi/client';

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
export { FileLock, LockedError, type LockOwner } from './receiver/lock';
export type { RetryOptions } from './receiver/backoff';

export type { HandlerSpec, HandlerEnv } from './handlers/spec';
export { StdoutHandler, stdoutSpec, type StdoutOptions } from './handlers/stdout';
export { HttpHandler, httpSpec } from './handlers/http';
export { MqttHandler, mqttSpec, awsIotSpec } from './handlers/mqtt';
export { WialonHandler, wialonSpec } from './handlers/wialon';
export { builtinHandlerSpecs, handlerTypes, handlerSpec, createHandler, createHandlers } from './handlers/registry';

export { loadConfig, parseConfig, resolveToken, createSource, buildReceiver, type ReceiverConfig, type RestSourceConfig, type MqttSourceConfig } from './config';

export { startSandbox, type Sandbox, type SandboxOptions } from '../sandbox/index';
