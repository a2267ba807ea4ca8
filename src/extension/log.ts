import type * as vscode from 'vscode';
import type { Logger } from '../core/logger';

/** The core library's Logger on top of the "flespi" LogOutputChannel, with an optional `[scope]` prefix. */
export function coreLogger(channel: vscode.LogOutputChannel, scope?: string): Logger {
  const tag = scope ? `[${scope}] ` : '';
  return {
    debug: (message) => channel.debug(tag + message),
    info: (message) => channel.info(tag + message),
    warn: (message) => channel.warn(tag + message),
    error: (message) => channel.error(tag + message),
  };
}
