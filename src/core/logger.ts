import { redactUrls } from './security';

/** The minimal logger the library writes to. The CLI logs to stderr, the extension to its LogOutputChannel. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Control characters that a terminal would act on, as visible escapes: C0 (but tab, and newline when
 * `keepNewlines`), DEL, C1 (U+0080–U+009F: 8-bit CSI/OSC, acted on by xterm and others) and the
 * Unicode bidi overrides (which reorder what a line appears to say). Parameter names, server reasons,
 * error texts and channel names reach stderr from devices and servers; an ESC among them could retitle,
 * clear or rewrite the user's terminal. `\x1b` stays readable as `\x1b`.
 */
export function escapeControl(text: string, keepNewlines = false): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being escaped
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n' && keepNewlines) return c;
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * A line fit for a terminal: control characters escaped (a log line is one line) and `user:password@`
 * removed from every URL. All of the CLI's stderr goes through here.
 */
export function terminalLine(text: string, keepNewlines = false): string {
  return escapeControl(redactUrls(text), keepNewlines);
}

/** Writes `level: message` lines to stderr (stdout is reserved for message output), each made safe by `terminalLine`. */
export function stderrLogger(verbose = false): Logger {
  const write = (level: string) => (message: string) => process.stderr.write(`${level}: ${terminalLine(message)}\n`);
  return { debug: verbose ? write('debug') : () => {}, info: write('info'), warn: write('warn'), error: write('error') };
}
