import type { Logger } from '../../src/core/logger';

/** A Logger that keeps every line, for asserting on warnings. */
export interface MemoryLogger extends Logger {
  readonly lines: { level: 'debug' | 'info' | 'warn' | 'error'; message: string }[];
  /** The messages logged at `level`. */
  at(level: 'debug' | 'info' | 'warn' | 'error'): string[];
}

export function memoryLogger(): MemoryLogger {
  const lines: MemoryLogger['lines'] = [];
  const write = (level: MemoryLogger['lines'][number]['level']) => (message: string) => void lines.push({ level, message });
  return {
    lines,
    at: (level) => lines.filter((l) => l.level === level).map((l) => l.message),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

/** `HandlerContext.reject` for tests that call a handler directly and expect every message to be accepted. */
export function unexpectedReject(index: number, reason: unknown): never {
  throw new Error(`message ${index} was rejected as undeliverable: ${reason instanceof Error ? reason.message : String(reason)}`);
}
