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
