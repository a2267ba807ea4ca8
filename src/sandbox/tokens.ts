import { randomBytes } from 'node:crypto';

export type TokenCheck = 'ok' | 'unknown' | 'blocked';

interface TokenInfo {
  id: number;
  blocked: boolean;
}

/** The tokens the sandbox accepts over REST and MQTT. */
export class TokenRegistry {
  private readonly tokens = new Map<string, TokenInfo>();
  private nextId = 1;

  add(token: string, options: { blocked?: boolean } = {}): void {
    const bare = bareToken(token);
    if (bare === '') throw new Error('a sandbox token must not be empty');
    const existing = this.tokens.get(bare);
    this.tokens.set(bare, { id: existing?.id ?? this.nextId++, blocked: options.blocked ?? false });
  }

  check(token: string | undefined): TokenCheck {
    if (token === undefined) return 'unknown';
    const info = this.tokens.get(bareToken(token));
    if (!info) return 'unknown';
    return info.blocked ? 'blocked' : 'ok';
  }

  /** The token's id, for `/auth/info`. */
  idOf(token: string): number | undefined {
    return this.tokens.get(bareToken(token))?.id;
  }
}

/** The token without the optional `FlespiToken ` prefix. */
export function bareToken(value: string): string {
  return value.trim().replace(/^FlespiToken\s+/i, '');
}

/** A random token shaped like flespi's: 64 letters and digits. */
export function randomToken(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(64);
  let token = '';
  for (const byte of bytes) token += alphabet[byte % alphabet.length];
  return token;
}
