// Reading a sink's settings in tests: the whole ConfigError message a spec gives for bad settings.
import assert from 'node:assert/strict';
import type { HandlerEnv, HandlerSpec } from '../../src/core/handlers/spec';
import { ConfigError, type Options } from '../../src/core/options';

/** The message of the ConfigError `spec.create` throws for `options`; fails the test when it accepts them. */
export function settingsError(spec: HandlerSpec, options: Options, env: HandlerEnv, name: string): string {
  try {
    spec.create(options, env, name);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`${spec.type} create() accepted the settings ${JSON.stringify(options)}`);
}
