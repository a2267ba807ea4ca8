import type { Writable } from 'node:stream';
import { Handler, type HandlerContext } from '../handler';
import type { FlespiMessage } from '../message';
import type { OptionsSchema } from '../optionSchema';
import { OptionReader, type Options } from '../options';
import { jsonLines } from './serialize';
import type { HandlerSpec } from './spec';

export interface StdoutOptions {
  /** Indented JSON (several lines per message) instead of one JSON object per line. */
  pretty?: boolean;
  /** Where to write; default process.stdout. */
  output?: Writable;
}

/**
 * Writes each message as JSON to a stream: one object per line (NDJSON, for `jq` and pipes), or
 * indented with `pretty`. A batch is accepted once the stream took all of it, so a slow reader of
 * the pipe slows the receiver down instead of filling memory. A message that cannot be written as
 * JSON (serialize.ts) goes to ctx.reject; the others are written.
 */
export class StdoutHandler extends Handler {
  private readonly pretty: boolean;
  private readonly output: Writable;
  private written = 0;

  constructor(options: StdoutOptions = {}, name = 'stdout') {
    super(name);
    this.pretty = options.pretty ?? false;
    this.output = options.output ?? process.stdout;
  }

  async handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    if (messages.length === 0) return;
    const { text, count: lines } = jsonLines(messages, this.pretty, (index, error) => ctx.reject(index, error));
    if (lines === 0) return;
    const safe = TERMINAL_CONTROLS.test(text) ? text.replace(TERMINAL_CONTROLS_ALL, escapeChar) : text;
    // The callback fires once the stream has flushed the chunk (or failed): that is our backpressure.
    await new Promise<void>((resolve, reject) => {
      this.output.write(safe, (error) => (error ? reject(error) : resolve()));
    });
    this.written += lines;
  }

  override health() {
    return { detail: `${this.written} messages written` };
  }
}

/**
 * Characters JSON.stringify leaves raw that a terminal may act on: DEL and the C1 controls (U+009B
 * starts an escape sequence in terminals that honour 8-bit controls) and the bidi overrides (they
 * reorder what the reader sees). Written as \uXXXX they are the same JSON value, and inert.
 */
const TERMINAL_CONTROLS = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const TERMINAL_CONTROLS_ALL = new RegExp(TERMINAL_CONTROLS.source, 'g');

function escapeChar(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

export const stdoutOptions = {
  pretty: { type: 'boolean', default: false, description: 'Indented JSON (several lines per message) instead of one JSON object per line.' },
} as const satisfies OptionsSchema;

export const stdoutSpec: HandlerSpec = {
  type: 'stdout',
  title: 'Print messages as JSON lines on standard output',
  options: stdoutOptions,
  create(options: Options, _env, name: string) {
    const reader = new OptionReader(options, `handler "${name}" (stdout)`);
    const pretty = reader.option('pretty', stdoutOptions.pretty);
    reader.rejectUnknown();
    return new StdoutHandler({ pretty }, name);
  },
};
