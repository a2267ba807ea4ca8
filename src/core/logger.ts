/** The minimal logger the library writes to. The CLI logs to stderr, the extension to its LogOutputChannel. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Writes `level: message` lines to stderr (stdout is reserved for message output). */
export function stderrLogger(verbose = false): Logger {
  const write = (level: string) => (message: string) => process.stderr.write(`${level}: ${message}\n`);
  return { debug: verbose ? write('debug') : () => {}, info: write('info'), warn: write('warn'), error: write('error') };
}
