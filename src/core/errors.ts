/** What went wrong talking to flespi, in terms a user can act on. */
export type FlespiErrorKind =
  | 'auth' // 401: token missing, wrong or expired
  | 'forbidden' // 403: token or account blocked, or the token's ACL does not allow this
  | 'not-found' // 404: unknown channel/device id
  | 'bad-request' // 400: invalid parameters
  | 'rate-limited' // 429: back off and retry
  | 'server' // 5xx: transient, retry
  | 'network' // connection refused, DNS failure, reset
  | 'timeout' // no answer in time
  | 'malformed'; // the body is not the JSON envelope flespi sends

const RETRYABLE: ReadonlySet<FlespiErrorKind> = new Set(['rate-limited', 'server', 'network', 'timeout', 'malformed']);

export interface FlespiErrorDetail {
  code?: number;
  reason?: string;
  id?: number;
}

export class FlespiError extends Error {
  override readonly name = 'FlespiError';
  readonly kind: FlespiErrorKind;
  /** HTTP status, when there was an HTTP answer. */
  readonly status?: number;
  /** The `errors` array of flespi's envelope, when there was one. */
  readonly details: FlespiErrorDetail[];
  /** Seconds to wait before retrying, when the server said so (Retry-After). */
  readonly retryAfter?: number;

  constructor(kind: FlespiErrorKind, message: string, options: { status?: number; details?: FlespiErrorDetail[]; retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
    this.details = options.details ?? [];
    this.retryAfter = options.retryAfter;
  }

  /** True when the same request may succeed later without the user changing anything. */
  get retryable(): boolean {
    return RETRYABLE.has(this.kind);
  }
}

/** The message of any thrown value, for logs and status lines. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Thrown by a handler when the messages it was given can never be delivered as they are: they cannot
 * be serialized or encoded, their topic cannot be formed, the endpoint refused them for good (HTTP
 * 4xx other than 408/429), they are over the sink's size limit. Retrying cannot help, so the receiver
 * does not wait: it splits the batch to find the messages at fault and records each in the
 * dead-letter store with this error (see `HandlerContext.reject` to name them directly).
 */
export class UndeliverableError extends Error {
  override readonly name: string = 'UndeliverableError';
}

/**
 * Thrown by a handler when the sink cannot take anything right now (down, unreachable, overloaded):
 * the same messages are retried with backoff for as long as it takes, and never dead-lettered.
 */
export class TransientError extends Error {
  override readonly name: string = 'TransientError';
}

/**
 * How the receiver treats a handler's error:
 * - `transient`: the sink, not the messages: retried with backoff, forever.
 * - `undeliverable`: these messages, as they are: isolated and dead-lettered at once.
 * - `unknown`: anything else (a TypeError in handler code, a generic Error): retried a few times,
 *   then treated as message-level (the batch is split to find the culprits).
 */
export type FailureKind = 'transient' | 'undeliverable' | 'unknown';

/** Node's error codes for a connection that failed or broke: the sink, not the message. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
  'UND_ERR_SOCKET',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ECONNCLOSED',
]);

/** Classifies a handler error by its class, its `code` and its causes. */
export function classifyFailure(error: unknown): FailureKind {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof UndeliverableError) return 'undeliverable';
    if (e instanceof TransientError) return 'transient';
    if (e instanceof FlespiError) return e.retryable ? 'transient' : 'unknown';
    if (e.name === 'AbortError' || e.name === 'HandlerTimeoutError' || e.name === 'TimeoutError') return 'transient';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'transient';
  }
  return 'unknown';
}
