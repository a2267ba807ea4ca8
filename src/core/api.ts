/**
 * What `import ... from 'flespi-receiver'` gives a handler file (the custom handler loader hands it
 * this module): the Handler base class and what a handler works with. It imports nothing that loads
 * handlers, so the loader depends on it without a cycle. The library's whole API is `./index`.
 */
export { Handler, undeliverablePolicies, type HandlerContext, type HandlerHealth, type UndeliverablePolicy } from './handler';
export { numberParam, stringParam, type FlespiMessage } from './message';
export { silentLogger, stderrLogger, type Logger } from './logger';
export {
  FlespiError,
  UndeliverableError,
  TransientError,
  classifyFailure,
  errorMessage,
  type FailureKind,
  type FlespiErrorKind,
  type FlespiErrorDetail,
} from './errors';
export { ConfigError, OptionReader, type Options } from './options';
export { FlespiClient, regionBaseUrl, type FlespiClientOptions, type FlespiRegion, type PollParams, type PollResult } from './flespi/client';

// The built-in handlers, for handlers that extend one of them.
export type { HandlerSpec, HandlerEnv } from './handlers/spec';
export { StdoutHandler, stdoutSpec, type StdoutOptions } from './handlers/stdout';
export { HttpHandler, httpSpec } from './handlers/http';
export { MqttHandler, mqttSpec, awsIotSpec } from './handlers/mqtt';
export { WialonHandler, wialonSpec } from './handlers/wialon';
