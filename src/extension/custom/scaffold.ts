/**
 * The files "flespi: New Handler…" writes: a handler class with a working example, and the typings
 * of 'flespi-receiver' so the editor knows the API. No vscode here: tested on its own.
 */

/** Names the handler class may not take: they would shadow what the template imports. */
const TAKEN = new Set(['Handler', 'FlespiMessage', 'HandlerContext', 'HandlerHealth', 'Logger', 'TransientError', 'UndeliverableError', 'Promise', 'Error', 'Object', 'JSON', 'Array']);

/** Why `name` cannot be a handler class name, or undefined when it can. */
export function validateHandlerName(name: string): string | undefined {
  if (name.trim() === '') return 'Enter a name, e.g. MyHandler';
  if (name !== name.trim()) return 'Remove the spaces around the name';
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) return `"${name}" is not an identifier: use letters and digits only, starting with a letter (e.g. MyHandler)`;
  if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) return `"${name}" is not PascalCase: start with a capital letter and use letters and digits only (e.g. ${pascalCase(name) || 'MyHandler'})`;
  if (name.length > 64) return 'Use at most 64 characters';
  if (TAKEN.has(name)) return `"${name}" is taken by the API the handler imports: choose another name, e.g. My${name}`;
  return undefined;
}

/** What the template writes to when no `outputFile` option is set: next to the handler file. */
export function defaultOutputFile(name: string): string {
  return `${name}.out.ndjson`;
}

/** The source of a new handler class `name` (validate the name first). */
export function handlerTemplate(name: string): string {
  return `/// <reference path="./flespi-receiver.d.ts" />
import { appendFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Handler, type FlespiMessage } from 'flespi-receiver';

/**
 * ${name}: forwards flespi messages to wherever you like.
 *
 * Lifecycle (the receiver calls these):
 *  - constructor(options): once, with the sink's "options" from the settings.
 *  - start(): once, before the first batch. Open connections or files here; throw to report a problem.
 *  - handle(messages, ctx): for each batch, in order. Resolve when all of it is safely stored.
 *    Throw TransientError when the sink is down: the same batch comes again later (with backoff).
 *    Call ctx.reject(index, why) for a message you can never store (or throw UndeliverableError):
 *    it goes to the dead-letter store and the rest goes on. flespi's messages are acknowledged only
 *    after every sink accepted or dead-lettered them, so nothing is lost.
 *  - stop(): once at the end. Close what start() opened.
 *  - health(): a short status line for the Sinks view.
 *
 * Saving this file reloads it. Use this.log.info(...) to write to the "flespi" output channel.
 */
export default class ${name} extends Handler {
  private readonly outputFile: string;
  private written = 0;

  constructor(options: { outputFile?: string } = {}) {
    super();
    // Example: append each message as one JSON line to a file (relative paths: next to this file).
    this.outputFile = resolve(__dirname, options.outputFile ?? ${JSON.stringify(defaultOutputFile(name))});
  }

  async start(): Promise<void> {
    this.log.info(\`${name} writes messages to \${this.outputFile}\`);
  }

  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    const lines = messages.map((message) => JSON.stringify(message) + '\\n').join('');
    await appendFile(this.outputFile, lines, 'utf8');
    this.written += messages.length;
  }

  async stop(): Promise<void> {
    this.log.info(\`${name} wrote \${this.written} messages\`);
  }

  health() {
    return { detail: \`\${this.written} messages written\` };
  }
}
`;
}

/**
 * Typings of the API a handler imports, so the editor checks the handler without installing
 * anything. `withNode`: also declare the few Node.js APIs the example uses (only when @types/node
 * is not installed, whose own declarations would clash with these).
 */
export function typingsTemplate(withNode: boolean): string {
  const node = `
// The Node.js APIs the example uses. Install @types/node for all of Node's types, then delete this part.
declare var __dirname: string;
declare module 'node:fs/promises' {
  export function appendFile(path: string, data: string, encoding: 'utf8'): Promise<void>;
}
declare module 'node:path' {
  export function resolve(...paths: string[]): string;
}
`;
  return `// Types of the 'flespi-receiver' API for handler files, written by the flespi extension.
// At run time the extension (or the flespi-receiver CLI) provides the real implementation.

declare module 'flespi-receiver' {
  /** A flespi message: a flat object keyed by dotted parameter names (ident, timestamp, position.latitude, ...). */
  export type FlespiMessage = Record<string, unknown>;

  export interface Logger {
    debug(message: string): void;
    info(message: string): void;
    warn(message: string): void;
    error(message: string): void;
  }

  export interface HandlerContext {
    /** Aborted when the receiver stops or this attempt timed out: stop work and throw. */
    readonly signal: AbortSignal;
    /** 1 for the first delivery of this batch, 2 for the first retry, ... */
    readonly attempt: number;
    readonly log: Logger;
    /** messages[index] can never be delivered by this handler: it is dead-lettered with \`reason\`; go on with the rest. */
    reject(index: number, reason: unknown): void;
  }

  /** Throw it when the sink is down or busy: the same messages are retried with backoff, forever. */
  export class TransientError extends Error {}
  /** Throw it when these messages can never be delivered as they are: they are isolated and dead-lettered. */
  export class UndeliverableError extends Error {}

  export interface HandlerHealth {
    connected?: boolean;
    detail?: string;
  }

  export abstract class Handler {
    readonly name: string;
    /** What happens to a message this handler can never deliver (the sink's "onUndeliverable" setting). */
    onUndeliverable: 'dead-letter' | 'stop' | 'retry';
    protected log: Logger;
    constructor(name?: string);
    start(): Promise<void>;
    abstract handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void>;
    stop(): Promise<void>;
    health(): HandlerHealth;
  }

  export function numberParam(message: FlespiMessage, name: string): number | undefined;
  export function stringParam(message: FlespiMessage, name: string): string | undefined;
}
${withNode ? node : ''}`;
}

function pascalCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('')
    .replace(/^[0-9]+/, '');
}
