/**
 * The files "flespi: New Handler…" writes: a handler class with a working example, and the typings
 * of 'flespi-receiver' (generated from the source at build time) so the editor knows the API. No
 * vscode here: tested on its own.
 */

/** Names the handler class may not take: they would shadow what the template imports. */
const TAKEN = new Set([
  'Handler',
  'FlespiMessage',
  'HandlerContext',
  'HandlerHealth',
  'Logger',
  'TransientError',
  'UndeliverableError',
  'Promise',
  'Error',
  'Object',
  'JSON',
  'Array',
]);

/** Why `name` cannot be a handler class name, or undefined when it can. */
export function validateHandlerName(name: string): string | undefined {
  if (name.trim() === '') return 'Enter a name, e.g. MyHandler';
  if (name !== name.trim()) return 'Remove the spaces around the name';
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) return `"${name}" is not an identifier: use letters and digits only, starting with a letter (e.g. MyHandler)`;
  if (!/^[A-Z][A-Za-z0-9]*$/.test(name))
    return `"${name}" is not PascalCase: start with a capital letter and use letters and digits only (e.g. ${pascalCase(name) || 'MyHandler'})`;
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

/** Where the build writes the typings of the handler API (scripts/handler-typings.mjs), relative to the extension's folder. */
export const API_TYPINGS_PATH = ['dist', 'handler-typings.d.ts'] as const;

/**
 * The typings file next to new handlers, so the editor checks them without installing anything:
 * `apiTypings`, generated from the source at build time (API_TYPINGS_PATH). `withNode`: also
 * stand-ins for the Node.js modules the example and those typings use (only when @types/node is
 * not installed, whose own declarations would clash with these).
 */
export function typingsTemplate(apiTypings: string, withNode: boolean): string {
  if (!withNode) return apiTypings;
  return `${apiTypings}
// The Node.js APIs the example and the API use. Install @types/node for all of Node's types, then delete this part.
declare var __dirname: string;
declare module 'node:fs/promises' {
  export function appendFile(path: string, data: string, encoding: 'utf8'): Promise<void>;
}
declare module 'node:path' {
  export function resolve(...paths: string[]): string;
}
${apiNodeStandIns(apiTypings)}`;
}

/** Untyped stand-ins for what the API's typings take from Node modules (declarations of one module merge). */
function apiNodeStandIns(apiTypings: string): string {
  // The generated typings import a module as `import * as <alias> from '<module>';` and use `<alias>.<Name>`.
  return [...apiTypings.matchAll(/^\s*import \* as (\w+) from '([^']+)';$/gm)]
    .map(([, alias, module]) => {
      const names = new Set([...apiTypings.matchAll(new RegExp(`\\b${alias!}\\.(\\w+)`, 'g'))].map((m) => m[1]!));
      return `declare module '${module!}' {\n${[...names].map((name) => `  export type ${name} = any;\n  export const ${name}: any;\n`).join('')}}\n`;
    })
    .join('');
}

function pascalCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('')
    .replace(/^[0-9]+/, '');
}
