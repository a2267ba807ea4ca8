/**
 * Where a tail's messages come from, without vscode: the last N over REST, then live over MQTT,
 * and after every reconnect the gap filled over REST. A viewer, not a consumer: QoS 0, a clean
 * session, nothing acknowledged or deleted in the channel.
 */
import { randomBytes } from 'node:crypto';
import { connect, type MqttClient } from 'mqtt';
import { errorMessage, FlespiError } from '../../core/errors';
import type { FlespiClient } from '../../core/flespi/client';
import { channelTopic, connectOptions, fillGap, messageKey, parsePayload, Reconnects, safeHost, serverFilter } from '../../core/flespi/subscription';
import type { Logger } from '../../core/logger';
import type { FlespiMessage } from '../../core/message';
import type { ConnectionState, NoticeLevel } from '../../shared/tailProtocol';

export interface TailSessionOptions {
  channelId: number;
  /** e.g. `mqtts://mqtt.flespi.io:8883`, or the sandbox's `mqtt://127.0.0.1:port`. */
  mqttUrl: string;
  token: string;
  client: Pick<FlespiClient, 'channelMessages' | 'serverNow'>;
  /** How many recent messages to load over REST before going live (0: none). */
  backfill: number;
  /** Most messages one gap fill loads after a reconnect (the newest win). */
  gapLimit: number;
  /** A flespi expression applied on the server ('' for none). */
  filter: string;
  /** The newest `server.timestamp` the viewer holds: where a gap fill starts. */
  lastServerTimestamp: () => number | undefined;
  log: Logger;
  /** Delay between reconnect attempts, at most (at least half of it, so that many tails do not retry in step). Default 3000. */
  reconnectPeriodMs?: number;
}

export interface TailSessionListener {
  /** Messages in arrival order. Backfill and gap fill may repeat what is held: returns how many were new. */
  messages(messages: FlespiMessage[], origin: 'backfill' | 'gap' | 'live'): number;
  state(state: ConnectionState, detail: string): void;
  notice(level: NoticeLevel, text: string): void;
}

/**
 * Why flespi refuses a server filter expression (its parser's words), or undefined when it takes it.
 * Asked over REST with the same expression (a read of the newest message) before the tail restarts
 * with it, so a mistake keeps the tail and its buffer as they were. An answer that is not a refusal
 * of the request (network, server trouble) is no verdict on the expression: undefined too.
 */
export async function filterProblem(
  client: Pick<FlespiClient, 'channelMessages'>,
  channelId: number,
  expression: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  try {
    await client.channelMessages(channelId, { count: 1, reverse: true, filter: expression }, signal);
    return undefined;
  } catch (error) {
    if (!(error instanceof FlespiError) || error.kind !== 'bad-request') return undefined;
    const reasons = error.details.map((d) => d.reason).filter((r): r is string => typeof r === 'string' && r !== '');
    return reasons.length > 0 ? reasons.join('; ') : error.message;
  }
}

/** How long stop() lets the broker answer a DISCONNECT by closing the connection before closing it itself. */
const DISCONNECT_GRACE_MS = 2000;

export class TailSession {
  private mqtt: MqttClient | undefined;
  private readonly aborter = new AbortController();
  private stopped = false;
  private stopping: Promise<void> | undefined;
  /** The broker refused us (bad token, banned): MQTT.js does not retry, neither do we. */
  private refused = false;
  private connectedOnce = false;
  /** Bumped on every connect, so a catch-up that outlived its connection does not finish the next one's. */
  private connects = 0;
  /** Live messages that arrive while a backfill or gap fill is loading; they go after it. */
  private held: FlespiMessage[] | undefined;
  private lastError = '';
  private invalidPayloads = 0;
  private readonly host: string;
  private readonly reconnects: Reconnects;
  readonly topic: string;

  constructor(
    private readonly options: TailSessionOptions,
    private readonly listener: TailSessionListener,
  ) {
    this.topic = channelTopic(options.channelId, { filter: options.filter });
    this.host = safeHost(options.mqttUrl);
    // A viewer retries at a steady pace: someone is watching it come back.
    const period = options.reconnectPeriodMs ?? 3000;
    this.reconnects = new Reconnects({ initialMs: period, maxMs: period });
  }

  start(): void {
    if (this.stopped || this.mqtt) return;
    const { log } = this.options;
    this.listener.state('connecting', `Connecting to ${this.host}…`);
    log.info(`tail ${this.options.channelId}: connecting to ${this.host}, topic ${this.topic}`);
    // A throwaway clean session: a viewer leaves nothing behind on the broker.
    const client = connect(
      this.options.mqttUrl,
      connectOptions({
        token: this.options.token,
        clientId: `flespi-receiver-tail-${randomBytes(4).toString('hex')}`,
        session: 'clean',
        connectTimeoutMs: 20_000,
      }),
    );
    this.mqtt = client;
    client.on('connect', () => void this.onConnect(client));
    client.on('message', (_topic, payload) => this.onPayload(payload));
    client.on('reconnect', () => {
      if (!this.stopped && !this.refused) this.listener.state('reconnecting', `Reconnecting to ${this.host}…${this.lastError ? ` (${this.lastError})` : ''}`);
    });
    client.on('close', () => {
      if (this.stopped || this.refused) return;
      this.held = undefined;
      const what = this.connectedOnce ? `Connection to ${this.host} lost` : `Cannot reach ${this.host}`;
      this.listener.state('reconnecting', `${what}${this.lastError ? `: ${this.lastError}` : ''}; retrying`);
      this.reconnects.schedule(() => {
        if (!this.stopped && !this.refused) client.reconnect();
      });
    });
    client.on('error', (error: Error & { code?: unknown }) => {
      this.lastError = error.message;
      if (typeof error.code === 'number') {
        // A CONNACK refusal (bad token, not authorized, banned…): retrying will not help.
        this.refused = true;
        this.listener.state('offline', `flespi refused the MQTT connection: ${error.message}. Check the token of the flespi connection.`);
        client.end(true);
      }
      log.warn(`tail ${this.options.channelId}: MQTT ${error.message}`);
    });
  }

  /**
   * Disconnects and cancels any REST catch-up. Resolves once the socket is closed: no reconnect
   * timer, socket or request of this session remains. Safe to call more than once, even before start().
   */
  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  private async close(): Promise<void> {
    this.stopped = true;
    this.reconnects.cancel();
    this.aborter.abort();
    const client = this.mqtt;
    this.mqtt = undefined;
    if (client) await endClient(client);
    this.options.log.info(`tail ${this.options.channelId}: stopped`);
  }

  private async onConnect(client: MqttClient): Promise<void> {
    const first = !this.connectedOnce;
    const connect = ++this.connects;
    this.connectedOnce = true;
    this.reconnects.connected();
    this.held = [];
    try {
      await client.subscribeAsync(this.topic, { qos: 0, properties: { subscriptionIdentifier: 1 } });
    } catch (error) {
      // No SUBACK came (MQTT.js attaches it to a refusal): the connection went away first, and the next connect subscribes again.
      if (this.stopped || (error as { packet?: { cmd?: unknown } }).packet?.cmd !== 'suback') return;
      this.refused = true;
      // The filter as typed, not the URL-encoded topic it went into.
      const what =
        this.options.filter === ''
          ? `the messages of channel ${this.options.channelId}`
          : `the messages of channel ${this.options.channelId} with the server filter ${this.options.filter}`;
      const hint = this.options.filter === '' ? '' : ' Check the server filter expression.';
      this.listener.state('offline', `flespi refused the subscription to ${what}: ${errorMessage(error)}.${hint}`);
      client.end(true);
      return;
    }
    if (first) await this.loadBackfill();
    else await this.fillGap();
    if (this.stopped || connect !== this.connects || !client.connected) return;
    const held = this.held ?? [];
    this.held = undefined;
    if (held.length > 0) this.listener.messages(held, 'live');
    this.listener.state('live', this.options.filter === '' ? 'Live' : `Live, server filter: ${this.options.filter}`);
  }

  private onPayload(payload: Buffer): void {
    if (this.stopped) return;
    const { message, error } = parsePayload(payload);
    if (message === undefined) {
      this.invalidPayloads++;
      if (this.invalidPayloads === 1 || this.invalidPayloads % 1000 === 0) {
        this.options.log.warn(`tail ${this.options.channelId}: ignored ${this.invalidPayloads} payload(s) that are not a JSON object (latest: ${error})`);
      }
      return;
    }
    if (this.held) {
      this.held.push(message);
      if (this.held.length > this.options.gapLimit) this.held.shift();
    } else {
      this.listener.messages([message], 'live');
    }
  }

  private async loadBackfill(): Promise<void> {
    if (this.options.backfill <= 0) return;
    try {
      const newestFirst = await this.options.client.channelMessages(
        this.options.channelId,
        this.historyParams({ reverse: true, count: this.options.backfill }),
        this.aborter.signal,
      );
      if (this.stopped) return;
      this.deliverHistory(newestFirst.reverse(), 'backfill');
    } catch (error) {
      if (this.stopped) return;
      this.listener.notice('warning', `Could not load the last ${this.options.backfill} messages: ${errorMessage(error)}. Showing live messages only.`);
    }
  }

  private async fillGap(): Promise<void> {
    const from = this.options.lastServerTimestamp();
    if (from === undefined) {
      this.listener.notice('info', 'Reconnected.');
      return;
    }
    const limit = this.options.gapLimit;
    try {
      // The newest that fit the buffer, up to flespi's clock plus a margin; what is held twice is dropped by key.
      const oldestFirst: FlespiMessage[] = [];
      const gap = await fillGap({
        client: this.options.client,
        channelId: this.options.channelId,
        filter: this.options.filter,
        from,
        newest: limit,
        signal: this.aborter.signal,
        onMessages: (messages) => oldestFirst.push(...messages),
      });
      if (this.stopped) return;
      const added = this.deliverHistory(oldestFirst, 'gap');
      const capped = gap.capped ? ` (the newest ${limit}; older ones did not fit the buffer)` : '';
      this.listener.notice('info', `Reconnected: filled ${added} message${added === 1 ? '' : 's'} missed while offline${capped}.`);
    } catch (error) {
      if (this.stopped) return;
      this.listener.notice('warning', `Reconnected, but could not load the messages missed while offline: ${errorMessage(error)}.`);
    }
  }

  /** Delivers REST history, then drops held live messages that the history already contained. */
  private deliverHistory(oldestFirst: FlespiMessage[], origin: 'backfill' | 'gap'): number {
    const added = oldestFirst.length > 0 ? this.listener.messages(oldestFirst, origin) : 0;
    if (this.held && this.held.length > 0 && oldestFirst.length > 0) {
      const seen = new Set(oldestFirst.map(messageKey));
      this.held = this.held.filter((message) => !seen.has(messageKey(message)));
    }
    return added;
  }

  private historyParams(params: { reverse: boolean; count: number }) {
    const filter = serverFilter(this.options.filter);
    return filter === undefined ? params : { ...params, filter };
  }
}

/**
 * Ends an MQTT.js client and resolves once its socket is closed. Connected, it says DISCONNECT
 * first; but MQTT.js alone would wait forever for a peer that never closes the connection (a
 * dead network), or for a SUBACK that a dropped connection took with it, so after a grace period
 * the socket is destroyed. end() cancels the reconnect timer at once; the close ends the keepalive.
 */
function endClient(client: MqttClient): Promise<void> {
  if (!client.connected) return client.endAsync(true).catch(() => undefined);
  return new Promise((resolve) => {
    const stream = client.stream;
    const grace = setTimeout(() => stream.destroy(), DISCONNECT_GRACE_MS);
    stream.once('close', () => {
      clearTimeout(grace);
      resolve();
    });
    client.end(false);
  });
}
