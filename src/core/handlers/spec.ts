import type { Handler } from '../handler';
import type { OptionsSchema } from '../optionSchema';
import type { Options } from '../options';

/** What a handler factory may need from its host (CLI or extension). */
export interface HandlerEnv {
  /** Resolves a path the user wrote (relative to the config file or the workspace). */
  resolvePath(path: string): string;
}

/**
 * A built-in handler type as it appears in configuration: `{ "type": "wialon", "host": ..., "port": ... }`.
 * `create` validates the options (throwing ConfigError that names the bad setting) and builds the handler.
 */
export interface HandlerSpec {
  readonly type: string;
  /** One line for pick lists and docs. */
  readonly title: string;
  /** Its options (besides `type`, `name` and `onUndeliverable`): what `create` reads, and what the JSON schemas are generated from. */
  readonly options: OptionsSchema;
  create(options: Options, env: HandlerEnv, name: string): Handler;
}
