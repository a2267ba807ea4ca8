import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Handler } from '../../core/handler';
import type { FlespiMessage } from '../../core/message';

/**
 * The extension's `stdout` sink: VS Code has no stdout to print to, and streaming messages into an
 * output channel freezes the window, so the lines go to a file instead. A batch is accepted once
 * it is appended.
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

  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const text = messages.map((m) => (this.pretty ? JSON.stringify(m, null, 2) : JSON.stringify(m))).join('\n') + '\n';
    await appendFile(this.file, text, 'utf8');
    this.written += messages.length;
  }

  override health() {
    return { detail: `${this.written} messages written to ${this.file}` };
  }
}
