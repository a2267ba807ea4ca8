/** Builds the handler of a configured sink. No vscode here: tested on its own. */
import { join } from 'node:path';
import type { Handler } from '../../core/handler';
import { createHandler } from '../../core/handlers/registry';
import type { HandlerEnv } from '../../core/handlers/spec';
import { ConfigError, OptionReader } from '../../core/options';
import { handlerEntry, resolveSinkPath, type SinkSecrets, type SinkSetting } from './sinkModel';
import { NdjsonFileHandler } from './ndjsonFile';
import { ndjsonSinkOptions, sinkEntryOptions } from './sinkSchema';

export interface SinkHostEnv {
  /** Relative paths in sink settings (certificates, handler files) are relative to this folder. */
  baseDir: string;
  /** May user code from the workspace run (a trusted workspace)? */
  allowCustomCode: boolean;
}

/** Thrown for a custom sink in an untrusted workspace. */
export class UntrustedCodeError extends Error {
  override readonly name = 'UntrustedCodeError';
}

/** Creates the handler of `sink`, validating its settings (ConfigError names the bad one). */
export async function createSinkHandler(sink: SinkSetting, secrets: SinkSecrets | undefined, env: SinkHostEnv): Promise<Handler> {
  const handlerEnv: HandlerEnv = { resolvePath: (path) => resolveSinkPath(path, env.baseDir) };
  if (sink.type === 'custom' && !env.allowCustomCode) {
    throw new UntrustedCodeError(
      `sink "${sink.name}" runs code from ${String(sink.file)}, and this workspace is not trusted: trust the workspace to use custom handlers`,
    );
  }
  if (sink.type === 'stdout') {
    const where = `sink "${sink.name}" (stdout)`;
    const { name: _name, type: _type, ...options } = sink;
    const reader = new OptionReader(options, where);
    const file = reader.option('file', ndjsonSinkOptions.file) ?? join('flespi-output', `${sink.name.replace(/[^\w.-]+/g, '_')}.ndjson`);
    const pretty = reader.option('pretty', ndjsonSinkOptions.pretty);
    const policy = reader.option('onUndeliverable', sinkEntryOptions.onUndeliverable);
    reader.rejectUnknown();
    if (file.includes('\n')) throw new ConfigError(`${where}: "file" must be a file path`);
    const handler = new NdjsonFileHandler(resolveSinkPath(file, env.baseDir), pretty, sink.name);
    handler.onUndeliverable = policy;
    return handler;
  }
  return createHandler(handlerEntry(sink, secrets), handlerEnv, `sink "${sink.name}"`);
}
