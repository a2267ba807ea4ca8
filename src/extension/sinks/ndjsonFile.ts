import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage, TransientError } from '../../core/errors';
import { Handler, type HandlerContext } from '../../core/handler';
import { jsonLines } from '../../core/handlers/serialize';
import type { FlespiMessage } from '../../core/message';

/**
 * The extension's `stdout` sink: VS Code has no stdout to print to, and streaming messages into an
 * output channel freezes the window, so the lines go to a file instead. A batch is accepted once
 * it is appended. A message that cannot be written as JSON (serialize.ts) goes to ctx.reject.
 */
export class NdjsonFileHandler extends Handler {
  private written = 0;

  constructor(
    readonly file: string,
    private readonly pretty: boolean,
    name: string,
  ) {
    super(name);
  }

  override async start(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
  }

  async handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    if (messages.length === 0) return;
    const { text, count: lines } = jsonLines(messages, this.pretty, (index, error) => ctx.reject(index, error));
    if (lines === 0) return;
    try {
      await appendFile(this.file, text, 'utf8');
    } catch (error) {
      // A full disk or a folder that became unwritable is the file's problem, not the messages': retried, never dead-lettered.
      throw new TransientError(`cannot append to ${this.file}: ${errorMessage(error)}`, { cause: error });
    }
    this.written += lines;
  }

  override health() {
    return { detail: `${this.written} messages written to ${this.file}` };
  }
}
