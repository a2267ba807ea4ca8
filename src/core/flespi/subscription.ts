/**
 * A subscription to a flespi channel's messages over MQTT, as both readers of a channel need it:
 * the receiver's MQTT source (a consumer: persistent session, QoS 1, acknowledges) and the live tail
 * (a viewer: clean throwaway session, QoS 0). What they share lives here, once: the topic, the
 * connect options, payload parsing, the broker address for logs, the message key that tells REST
 * and MQTT copies of a message apart, and the gap fill over REST after a reconnect. The MQTT
 * package itself is not imported here (types only): it is a separate bundle loaded on first use.
 */
import { createHash } from 'node:crypto';
import type { IClientOptions } from 'mqtt';
import { backoffDelay, clampDelay, type RetryOptions } from '../backoff';
import type { Logger } from '../logger';
import type { FlespiMessage } from '../message';
import type { ChannelHistoryParams } from './client';

/** A server filter expression as flespi gets it: trimmed, or undefined when there is none. */
export function serverFilter(filter: string | undefined): string | undefined {
  const trimmed = filter?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/**
 * The topic of a channel's messages (assumption M3): `[$share/{group}/][$filter/payload={filter}/]flespi/message/gw/channels/{id}/+`.
 * The filter is URL-encoded, so MQTT wildcards and slashes in it stay literal.
 */
export function channelTopic(channelId: number, options: { filter?: string; group?: string } = {}): string {
  let topic = `flespi/message/gw/channels/${channelId}/+`;
  const filter = serverFilter(options.filter);
  if (filter !== undefined) topic = `$filter/payload=${encodeURIComponent(filter)}/${topic}`;
  if (options.group !== undefined) topic = `$share/${options.group}/${topic}`;
  return topic;
}

/** The MQTT username for a flespi token: the bare token, without a `FlespiToken ` prefix (assumption M2). */
export function mqttUsername(token: string): string {
  return token.trim().replace(/^FlespiToken\s+/i, '');
}

export interface ConnectOptions {
  token: string;
  clientId: string;
  /**
   * `persistent`: the broker keeps the subscription and unacknowledged messages across disconnects
   * (`clean: false`, MQTT 5 session expiry `sessionExpirySeconds`); `clean`: nothing is left behind.
   */
  session: 'persistent' | 'clean';
  /** MQTT 5 only, persistent sessions only. Default 3600 s. */
  sessionExpirySeconds?: number;
  /** MQTT 5 Receive Maximum: at most this many unacknowledged QoS 1 messages in flight. */
  receiveMaximum?: number;
  /** Default 5. */
  protocolVersion?: 4 | 5;
  /** Default 60 s. */
  keepaliveSeconds?: number;
  /** Default 30 s. */
  connectTimeoutMs?: number;
}

/**
 * MQTT.js options for a flespi channel subscription. MQTT.js neither reconnects (the caller does,
 * with backoff) nor resubscribes (the caller subscribes on every connect that needs it, and fills
 * the gap in between).
 */
export function connectOptions(options: ConnectOptions): IClientOptions {
  const protocolVersion = options.protocolVersion ?? 5;
  const result: IClientOptions = {
    clientId: options.clientId,
    username: mqttUsername(options.token),
    protocolVersion,
    clean: options.session === 'clean',
    keepalive: options.keepaliveSeconds ?? 60,
    connectTimeout: options.connectTimeoutMs ?? 30_000,
    reconnectPeriod: 0,
    resubscribe: false,
  };
  if (protocolVersion === 5) {
    const properties: NonNullable<IClientOptions['properties']> = {};
    if (options.session === 'persistent') properties.sessionExpiryInterval = options.sessionExpirySeconds ?? 3600;
    if (options.receiveMaximum !== undefined) properties.receiveMaximum = Math.min(options.receiveMaximum, 0xffff);
    if (Object.keys(properties).length > 0) result.properties = properties;
  }
  return result;
}

/**
 * When to reconnect a subscription's MQTT.js client (connectOptions turns its own reconnecting off):
 * after each close, a delay from `retry.initialMs` doubling up to `retry.maxMs` (with jitter, see
 * backoffDelay), from the start again once a connection is accepted.
 */
export class Reconnects {
  private closesInARow = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly retry: RetryOptions) {}

  /** Connections closed since the last one was accepted. */
  get failures(): number {
    return this.closesInARow;
  }

  /**
   * After the connection closed: runs `reconnect` once the delay is over, replacing one already
   * waiting. `atLeast` failures are counted (the source's quick closes, which a connection accepted
   * in between does not reset). Returns the delay (ms).
   */
  schedule(reconnect: () => void, atLeast = 0): number {
    this.closesInARow++;
    const delay = clampDelay(backoffDelay(this.retry, Math.max(this.closesInARow, atLeast)));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      reconnect();
    }, delay);
    return delay;
  }

  /** A connection was accepted: the next delay starts from the beginning. */
  connected(): void {
    this.closesInARow = 0;
  }

  /** Stops a reconnect that is waiting. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The SUBACK reason code (≥ 0x80) a subscription was refused with, or undefined when no SUBACK came.
 * MQTT.js 5 rejects `subscribe` with the message only and the SUBACK packet attached (`error.packet`),
 * not with the code.
 */
export function subackRefusal(error: unknown): number | undefined {
  const packet = (error as { packet?: { cmd?: unknown; granted?: unknown } } | undefined)?.packet;
  if (packet?.cmd !== 'suback' || !Array.isArray(packet.granted)) return undefined;
  return packet.granted.find((code): code is number => typeof code === 'number' && code >= 0x80);
}

/** A parsed payload: the message, or why it is not one (one line, for logs). */
export type ParsedPayload = { message: FlespiMessage; error?: undefined } | { message?: undefined; error: string };

/** flespi publishes one JSON object per message (assumption F1); anything else is not a message. */
export function parsePayload(payload: Buffer | string): ParsedPayload {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString());
  } catch {
    return { error: `the payload is not JSON (${payload.length} bytes)` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: `the payload is JSON ${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value}, not a message object` };
  }
  return { message: value as FlespiMessage };
}

/**
 * Where a broker URL points, for logs and the UI: `host:port`, or with `scheme` `mqtts://host:port`;
 * never the credentials, path or query the URL may carry.
 */
export function safeHost(url: string, options: { scheme?: boolean } = {}): string {
  try {
    const parsed = new URL(url);
    if (parsed.host !== '') return options.scheme ? `${parsed.protocol}//${parsed.host}` : parsed.host;
  } catch {
    // not a URL: say so without repeating it
  }
  return 'the configured MQTT URL';
}

/**
 * A message's identity for de-duplication: a hash of its whole content with object keys sorted at
 * every level (REST and MQTT may list them in another order). Two messages with the same key are
 * the same message; distinct messages never share one, even with equal `server.timestamp` and
 * ident (assumption F4).
 */
export function messageKey(message: FlespiMessage): string {
  return createHash('sha256').update(canonicalJson(message)).digest('base64');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    return `{${Object.keys(object)
      .sort()
      .filter((key) => object[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---- gap fill

/** What a gap fill needs from the REST client (FlespiClient has it). */
export interface GapFillClient {
  channelMessages(channelId: number, params: ChannelHistoryParams, signal?: AbortSignal): Promise<FlespiMessage[]>;
  /**
   * flespi's clock in ms since the epoch, as far as the client can tell (FlespiClient estimates it
   * from the `Date` headers of its answers). Without it the gap fill uses the local clock.
   */
  serverNow?(): number;
}

/** Added to flespi's clock for a gap fill's `to`: covers a clock estimate that is off, and messages stamped just before they become readable. */
export const GAP_FILL_MARGIN_S = 300;
/** The largest page a gap fill asks for when more messages share one `server.timestamp` than a page holds. */
const MAX_GAP_FILL_PAGE = 100_000;

/** flespi's clock (ms) as well as can be told: the client's estimate (else the local clock), never before `newestSeen` (a `server.timestamp`, s). */
export function flespiNow(client: GapFillClient, newestSeen?: number): number {
  const estimate = typeof client.serverNow === 'function' ? client.serverNow() : Date.now();
  return Math.max(Number.isFinite(estimate) ? estimate : Date.now(), (newestSeen ?? 0) * 1000);
}

export interface GapFill {
  client: GapFillClient;
  channelId: number;
  /** The server filter of the subscription: the REST read applies the same one. */
  filter?: string;
  /** Where the gap starts: the newest `server.timestamp` seen before the connection dropped (s). */
  from: number;
  /** The newest `server.timestamp` seen over MQTT by now (it may grow while the fill runs): flespi's clock is not before it. */
  newestSeen?: () => number | undefined;
  /**
   * Read only the newest this many, in one request (a viewer with a bounded buffer). Without it the
   * whole gap is read, oldest first, page by page (a consumer that must not lose any).
   */
  newest?: number;
  /** Messages per page when reading the whole gap. Default 1000. */
  pageSize?: number;
  /** Keys (`messageKey`) of messages MQTT already delivered: skipped. May grow while the fill runs. */
  delivered?: ReadonlySet<string>;
  signal?: AbortSignal;
  log?: Logger;
  /** New messages, oldest first, page by page; `skipped` counts those in `delivered`. */
  onMessages(messages: FlespiMessage[], skipped: number): void;
}

export interface GapFillResult {
  /** Messages handed to onMessages. */
  added: number;
  /** Messages skipped because MQTT had delivered them. */
  skipped: number;
  /** With `newest`: the gap held at least that many, so older ones may have been left out. */
  capped: boolean;
}

/**
 * Reads a gap over REST: [from, flespi's now + GAP_FILL_MARGIN_S] (assumption T5), so a local clock
 * behind flespi's loses nothing. Pages overlap at their boundary and several messages may share a
 * `server.timestamp`, so messages are told apart by `messageKey`, never by time. Rejects when a
 * request fails (what was read so far has been handed out).
 */
export async function fillGap(gap: GapFill): Promise<GapFillResult> {
  const filter = serverFilter(gap.filter);
  const params = (p: ChannelHistoryParams): ChannelHistoryParams => (filter === undefined ? p : { ...p, filter });
  const readOverRest = new Set<string>();
  const result: GapFillResult = { added: 0, skipped: 0, capped: false };
  /** Hands out the messages of a page not seen before, oldest first. */
  const take = (oldestFirst: readonly FlespiMessage[]) => {
    const fresh: FlespiMessage[] = [];
    let skipped = 0;
    for (const message of oldestFirst) {
      const key = messageKey(message);
      if (readOverRest.has(key)) continue; // on an earlier page too
      readOverRest.add(key);
      if (gap.delivered?.has(key)) skipped++;
      else fresh.push(message);
    }
    result.added += fresh.length;
    result.skipped += skipped;
    if (fresh.length > 0 || skipped > 0) gap.onMessages(fresh, skipped);
  };
  const now = () => flespiNow(gap.client, Math.max(gap.from, gap.newestSeen?.() ?? 0));
  let to = now() / 1000 + GAP_FILL_MARGIN_S;
  if (gap.newest !== undefined) {
    const newestFirst = await gap.client.channelMessages(gap.channelId, params({ from: gap.from, to, reverse: true, count: gap.newest }), gap.signal);
    result.capped = newestFirst.length >= gap.newest;
    take([...newestFirst].reverse());
    return result;
  }
  const pageSize = gap.pageSize ?? 1000;
  let from = gap.from;
  let count = pageSize;
  for (;;) {
    const page = await gap.client.channelMessages(gap.channelId, params({ from, to, count }), gap.signal);
    take(page);
    const last = page.length > 0 ? page[page.length - 1]['server.timestamp'] : undefined;
    const progressed = typeof last === 'number' && last > from;
    if (progressed) from = last;
    // A full page continues from its last timestamp (the boundary is de-duplicated by key); a full
    // page that does not get past `from` cannot be paged further.
    if (page.length >= count) {
      if (progressed) count = pageSize;
      // A full page of one timestamp: more messages share it than a page holds. Paging by time
      // cannot get past it, so ask for it again with room for all of them.
      else if (count < MAX_GAP_FILL_PAGE) count = Math.min(count * 4, MAX_GAP_FILL_PAGE);
      else {
        gap.log?.warn(`the gap fill over REST stopped at ${new Date(from * 1000).toISOString()}: more than ${count} messages share that server.timestamp`);
        return result;
      }
      continue;
    }
    // A short page is the last, unless the answer taught the client that flespi's clock is well
    // ahead of what `to` assumed (its first `Date` header): then read on to the better `to`.
    const better = now() / 1000 + GAP_FILL_MARGIN_S;
    if (better <= to + GAP_FILL_MARGIN_S / 2) return result;
    to = better;
  }
}
