import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import mqtt, { type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { abortReason, AbortError, type RetryOptions } from '../backoff';
import { errorMessage, FlespiError } from '../errors';
import {
  channelTopic,
  connectOptions,
  fillGap,
  messageKey,
  parsePayload,
  Reconnects,
  safeHost,
  subackRefusal,
  type GapFillClient,
} from '../flespi/subscription';
import { silentLogger, type Logger } from '../logger';
import type { FlespiMessage } from '../message';
import type { Checkpoint, Source, SourceBatch } from './source';

export type MqttConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export type { GapFillClient } from '../flespi/subscription';

export interface MqttSourceOptions {
  /** e.g. `mqtts://mqtt.flespi.io:8883`, or the sandbox's `mqtt://127.0.0.1:{port}`. */
  url: string;
  /** The flespi token, bare or with the `FlespiToken ` prefix (sent as the MQTT username). */
  token: string;
  channelId: number;
  /**
   * Identifies the broker session that keeps unacknowledged messages; keep it stable across restarts,
   * and never give two receivers the same one (the broker hands the session back and forth between
   * them, see `sessionOwner`). Default: `flespi-receiver-{channel}-{hostname}` (+ a hash of group,
   * filter and sessionOwner).
   */
  clientId?: string;
  /**
   * Who owns this position, e.g. the checkpoint path of the receiver's config: folded into the
   * default clientId, so a restart resumes its own session while two configs never share one.
   */
  sessionOwner?: string;
  /** Shared subscription group: receivers in one group split the stream (`$share/{group}/...`). */
  group?: string;
  /** A flespi expression evaluated by the broker (`$filter/payload=`), e.g. `position.speed>60`. */
  filter?: string;
  /** Default 5. */
  protocolVersion?: 4 | 5;
  /** Default 1000. */
  batchMaxMessages?: number;
  /** How long a batch waits to fill up after its first message. Default 200 ms. */
  batchMaxWaitMs?: number;
  /**
   * Messages received but not yet acknowledged, at most. MQTT 5 asks the broker for this as
   * Receive Maximum (≤ 65535); beyond it the source stops reading the socket. Default 10,000.
   */
  maxUnacked?: number;
  /** MQTT 5 session expiry: how long the broker keeps messages for an offline receiver. Default 3600 s. */
  sessionExpirySeconds?: number;
  /** Default 60 s. */
  keepaliveSeconds?: number;
  /** Delay between reconnect attempts. Default 1 s doubling up to 30 s. */
  reconnect?: RetryOptions;
  /**
   * After a reconnect where the broker may have lost messages, read the gap from the REST API:
   * `from` the newest `server.timestamp` seen, `to` flespi's clock (`client.serverNow()`, else the
   * local clock, never before the newest `server.timestamp` seen) plus a margin, so a local clock
   * behind flespi's loses nothing. Messages MQTT already delivered are skipped by their whole
   * content (several messages may share a `server.timestamp` and ident, so nothing less tells them
   * apart). Gap-filled messages come after newer MQTT ones. In a group, the member that reconnected
   * reads the whole gap, so messages the other members handled may come twice (at-least-once).
   *
   * The broker may have lost messages when: the session was not kept (CONNACK session-present 0);
   * the broker closed the connection saying its quota was exceeded (MQTT 5 DISCONNECT 0x97: flespi
   * keeps at most 1 GB per session, then disconnects and drops what was not delivered); or the
   * connection ended while the broker was holding messages back for this receiver (maxUnacked
   * reached), which is how that overflow looks without a reason code (MQTT 3.1.1).
   */
  gapFill?: { client: GapFillClient; pageSize?: number };
  onState?(state: MqttConnectionState, detail?: string): void;
  log?: Logger;
}

export interface MqttSourceStats {
  /** Messages handed out in batches (including gap-filled ones). */
  received: number;
  /** Payloads that were not a JSON object: logged, acknowledged and skipped. */
  malformed: number;
  /** Messages the broker sent again (DUP) after a reconnect. */
  redelivered: number;
  gapFilled: number;
  /** Gap-filled messages skipped because MQTT had already delivered them. */
  duplicatesSkipped: number;
  reconnects: number;
  /** Messages received and not yet acknowledged. */
  unacked: number;
  /**
   * Times another client took the session over (same clientId): MQTT 5 DISCONNECT 0x8E, or (MQTT
   * 3.1.1, or a broker that does not say why) connections closed right after they were accepted, several in a row.
   */
  takeovers: number;
}

/**
 * Another client connected with this source's clientId and the broker gave it the session (MQTT 5
 * DISCONNECT reason 0x8E). Not retryable: reconnecting would take the session back, and the two
 * receivers would keep stealing it from each other, each getting the other's unacknowledged
 * messages again. The other client keeps receiving everything, so stopping this one loses nothing.
 */
export class MqttSessionTakenOverError extends FlespiError {
  constructor(
    readonly clientId: string,
    message: string,
  ) {
    super('bad-request', message);
  }
}

/** One QoS 1 message's PUBACK, sent once its batch is done. */
interface PendingAck {
  readonly messageId: number;
  /** The connection it arrived on: a PUBACK on a later connection could acknowledge a different message. */
  readonly connection: number;
  done: boolean;
}

interface Received {
  message: FlespiMessage;
  ack?: PendingAck;
}

const DEFAULT_RECONNECT: RetryOptions = { initialMs: 1000, maxMs: 30_000 };
/** MQTT 5 DISCONNECT reason code: another connection with the same clientId took the session. */
const RC_SESSION_TAKEN_OVER = 0x8e;
/** A connection the broker closes (without a socket error) sooner than this after accepting it is a quick close... */
const QUICK_CLOSE_MS = 5000;
/** ...and this many in a row are reported as a probable session takeover. */
const QUICK_CLOSES_FOR_TAKEOVER = 3;
/** MQTT 5 DISCONNECT reason code: quota exceeded (what a broker says when a session's buffer overflowed). */
const RC_QUOTA_EXCEEDED = 0x97;
/** Messages remembered at the newest `server.timestamp` (several may share one), for the gap fill's boundary. */
const BOUNDARY_KEPT = 10_000;
/** Messages received over MQTT while a gap fill runs, remembered to skip their REST copies. */
const FILL_KEYS_KEPT = 200_000;
/** Passed to MQTT.js's handleMessage callback so it does not send the PUBACK itself (ack() does). */
const ACK_LATER = new Error('acknowledged once the batch is done');

/**
 * Receives a flespi channel's messages over MQTT: `flespi/message/gw/channels/{id}/+` at QoS 1 in a
 * persistent session, so the broker keeps what is not acknowledged across disconnects and restarts.
 *
 * Each message's PUBACK is held until the receiver calls `ack()` for its batch, i.e. after every
 * handler accepted it; messages not acknowledged when the connection drops are sent again by the
 * broker (at-least-once). PUBACKs go out in the order the messages arrived, as MQTT requires.
 *
 * MQTT.js handles one incoming packet at a time and only moves on when the previous one is
 * finished, so holding a message open (customHandleAcks) would stall the connection. Instead
 * handleMessage finishes each packet at once with a marker error that tells MQTT.js to skip its own
 * PUBACK, and this class writes the PUBACKs itself.
 */
export class MqttSource implements Source {
  readonly description: string;
  private readonly options: MqttSourceOptions;
  private readonly log: Logger;
  private readonly topic: string;
  /** The MQTT client id (the broker session): the given one or the default. */
  readonly clientId: string;
  private readonly protocolVersion: 4 | 5;
  private readonly batchMaxMessages: number;
  private readonly batchMaxWaitMs: number;
  private readonly maxUnacked: number;
  private client?: MqttClient;
  /** Increases with every accepted connection (CONNACK). */
  private connection = 0;
  private everConnected = false;
  private closing = false;
  private fatal?: Error;
  private readonly reconnects: Reconnects;
  /** When the current connection was accepted (CONNACK), and whether a socket error ended it. */
  private connectedAt?: number;
  private connectionErrored = false;
  /** Connections in a row that the broker closed right after accepting them. */
  private quickCloses = 0;
  private readonly pending: Received[] = [];
  private pendingSince = 0;
  private readonly acks: PendingAck[] = [];
  private readonly batchAcks = new WeakMap<SourceBatch, PendingAck[]>();
  private wakeWaiters: (() => void)[] = [];
  /** MQTT.js's callback for the packet being processed while too many messages are unacknowledged. */
  private resumeReading?: () => void;
  private seq = 0;
  private lastServerTimestamp?: number;
  /** The messages received at `lastServerTimestamp`: REST returns them again at the start of a gap. */
  private atLastServerTimestamp: FlespiMessage[] = [];
  /** Content keys of messages received over MQTT, one set per gap fill running. */
  private readonly fillsRunning = new Set<Set<string>>();
  /** Why the broker may have dropped messages of this session (set when the connection ends; read at the next CONNACK). */
  private lossSuspected?: string;
  private readonly gapFillAbort = new AbortController();
  private readonly counters: Omit<MqttSourceStats, 'unacked'> = {
    received: 0,
    malformed: 0,
    redelivered: 0,
    gapFilled: 0,
    duplicatesSkipped: 0,
    reconnects: 0,
    takeovers: 0,
  };
  private currentState: MqttConnectionState = 'offline';

  constructor(options: MqttSourceOptions) {
    this.options = options;
    this.log = options.log ?? silentLogger;
    if (!Number.isInteger(options.channelId) || options.channelId <= 0)
      throw new RangeError(`MqttSource channelId must be a positive integer, got ${options.channelId}`);
    if (options.token.trim() === '') throw new FlespiError('auth', 'no flespi token given: create one at https://flespi.io/#/panel/tokens and set it');
    this.protocolVersion = options.protocolVersion ?? 5;
    this.batchMaxMessages = positive('batchMaxMessages', options.batchMaxMessages ?? 1000);
    this.batchMaxWaitMs = Math.max(0, options.batchMaxWaitMs ?? 200);
    this.maxUnacked = positive('maxUnacked', options.maxUnacked ?? 10_000);
    this.reconnects = new Reconnects(options.reconnect ?? DEFAULT_RECONNECT);
    if (options.group !== undefined && !/^[^/+#]+$/.test(options.group))
      throw new RangeError(`MqttSource group "${options.group}" is invalid: use a name without '/', '+' or '#'`);
    this.topic = channelTopic(options.channelId, { group: options.group, filter: options.filter });
    this.clientId = options.clientId ?? defaultClientId(options.channelId, options.group, options.filter, options.sessionOwner);
    this.description = `channel ${options.channelId} over MQTT (${safeHost(options.url, { scheme: true })}${options.group ? `, group ${options.group}` : ''})`;
  }

  get state(): MqttConnectionState {
    return this.currentState;
  }

  get stats(): MqttSourceStats {
    return { ...this.counters, unacked: this.acks.length };
  }

  /** Connects and subscribes; rejects with a FlespiError when the broker cannot be reached or refuses (the receiver retries the retryable ones). */
  async open(_checkpoint: Checkpoint | undefined): Promise<void> {
    if (this.client) throw new Error('MqttSource.open() called twice');
    this.closing = false;
    this.setState('connecting');
    const client = this.createClient();
    this.client = client;
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (error: Error) => {
          client.off('close', onClose);
          reject(error);
        };
        const onClose = () =>
          fail(
            this.fatal ??
              new FlespiError(
                'network',
                `cannot connect to flespi MQTT at ${safeHost(this.options.url, { scheme: true })}: the connection closed before the broker accepted it`,
              ),
          );
        client.once('close', onClose);
        client.once('error', (error) => fail(this.classifyError(error)));
        client.once('connect', (connack) => {
          this.subscribe(connack, true).then(() => {
            client.off('close', onClose);
            resolve();
          }, fail);
        });
      });
    } catch (error) {
      this.client = undefined;
      this.fatal = undefined;
      client.end(true);
      this.setState('offline', errorMessage(error));
      throw error;
    }
    client.on('close', () => this.onClose());
  }

  async next(signal: AbortSignal): Promise<SourceBatch> {
    for (;;) {
      if (signal.aborted) throw abortReason(signal);
      if (this.fatal) throw this.fatal;
      if (this.closing) throw new AbortError('the MQTT source is closed');
      const waitedMs = performance.now() - this.pendingSince;
      if (this.pending.length >= this.batchMaxMessages || (this.pending.length > 0 && waitedMs >= this.batchMaxWaitMs)) return this.cutBatch();
      await this.waitForMessages(signal, this.pending.length > 0 ? this.batchMaxWaitMs - waitedMs : undefined);
    }
  }

  checkpointAfter(_batch: SourceBatch): Checkpoint | undefined {
    return undefined; // the broker session is the checkpoint
  }

  async ack(batch: SourceBatch): Promise<void> {
    const acks = this.batchAcks.get(batch);
    if (!acks) return; // gap-filled messages only, or already acknowledged
    this.batchAcks.delete(batch);
    for (const ack of acks) ack.done = true;
    this.flushAcks();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.gapFillAbort.abort();
    this.reconnects.cancel();
    this.wake();
    const client = this.client;
    this.client = undefined;
    if (client) {
      // DISCONNECT keeps the session: unacknowledged messages wait there (or go to another group member).
      await new Promise<void>((resolve) => {
        const forced = setTimeout(() => {
          client.end(true);
          resolve();
        }, 2000);
        client.end(false, () => {
          clearTimeout(forced);
          resolve();
        });
      });
    }
    this.setState('offline', 'closed');
  }

  // ---- connection

  private createClient(): MqttClient {
    const client = mqtt.connect(
      this.options.url,
      connectOptions({
        token: this.options.token,
        clientId: this.clientId,
        session: 'persistent',
        sessionExpirySeconds: this.options.sessionExpirySeconds,
        receiveMaximum: this.maxUnacked,
        protocolVersion: this.protocolVersion,
        keepaliveSeconds: this.options.keepaliveSeconds,
      }),
    );
    client.handleMessage = (packet, callback) => this.onPublish(packet, callback);
    client.on('connect', (connack) => {
      if (this.everConnected) void this.onReconnected(connack);
    });
    client.on('disconnect', (packet) => {
      if (packet.reasonCode === RC_SESSION_TAKEN_OVER) this.takenOver();
      else if (packet.reasonCode === RC_QUOTA_EXCEEDED) {
        this.lossSuspected = `flespi MQTT disconnected ${this.clientId} because its session buffer overflowed (DISCONNECT 0x97 quota exceeded) and dropped what was not delivered`;
      }
    });
    client.on('error', (error) => {
      this.connectionErrored = true;
      const classified = this.classifyError(error);
      if (!classified.retryable && this.everConnected) this.fail(classified);
      else if (this.everConnected) this.log.debug(`flespi MQTT: ${classified.message}`);
    });
    return client;
  }

  /** Subscribes (always on the first connection; later only when the broker lost the session). */
  private async subscribe(connack: IConnackPacket, first: boolean): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.connection++;
    this.acks.length = 0; // PUBACKs for messages of an earlier connection would hit the wrong messages
    this.reconnects.connected();
    this.connectedAt = performance.now();
    this.connectionErrored = false;
    if (first || !connack.sessionPresent) {
      try {
        await client.subscribeAsync(this.topic, { qos: 1 });
      } catch (error) {
        throw this.subscribeError(error);
      }
    }
    this.everConnected = true;
    this.setState('connected', connack.sessionPresent ? 'session resumed' : 'new session');
  }

  private async onReconnected(connack: IConnackPacket): Promise<void> {
    const lost = connack.sessionPresent ? this.lossSuspected : `flespi MQTT did not keep the session of ${this.clientId}`;
    this.lossSuspected = undefined;
    // Where the gap starts, taken before the new subscription can deliver anything newer.
    const from = this.lastServerTimestamp;
    const boundary = [...this.atLastServerTimestamp];
    if (connack.sessionPresent && !lost) {
      // The broker sends every unacknowledged message again: drop the copies not yet handed out.
      // (After a loss they are kept: the broker may not have them any more.)
      const kept = this.pending.filter((entry) => !entry.ack);
      this.pending.splice(0, this.pending.length, ...kept);
    }
    try {
      await this.subscribe(connack, false);
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (lost) {
      this.log.warn(
        `${lost}: messages published meanwhile may not come over MQTT${this.options.gapFill ? '; reading them over REST' : ' (gapFill is off: they are lost to this receiver)'}`,
      );
      if (this.options.gapFill) void this.fillGap(from, boundary);
    }
  }

  private onClose(): void {
    this.resumeReading = undefined;
    if (this.closing || this.fatal) return;
    // The broker was holding messages back (this receiver had maxUnacked unacknowledged): if it closed
    // the connection because the session's buffer overflowed, it dropped them (flespi: past 1 GB).
    if (this.connectedAt !== undefined && this.acks.length >= this.maxUnacked) {
      this.lossSuspected ??= `the connection to flespi MQTT ended while the broker was holding messages back for ${this.clientId} (${this.acks.length} unacknowledged); if its session buffer overflowed, it dropped them`;
    }
    const suspected = this.countQuickClose();
    // After quick closes the delay keeps growing (a plain reconnect resets it): no tight loop against another owner.
    const delay = this.reconnects.schedule(() => {
      if (this.closing || this.fatal || !this.client) return;
      this.counters.reconnects++;
      this.setState('connecting', `attempt ${this.reconnects.failures + 1}`);
      this.client.reconnect();
    }, this.quickCloses);
    const retrying = `retrying in ${(delay / 1000).toFixed(1)} s`;
    this.setState('reconnecting', suspected ? `${suspected}; ${retrying}` : `connection lost; ${retrying}`);
  }

  /** MQTT 5 told us another client took the session: stop, loudly (see MqttSessionTakenOverError). */
  private takenOver(): void {
    this.counters.takeovers++;
    this.fail(
      new MqttSessionTakenOverError(
        this.clientId,
        `flespi MQTT at ${safeHost(this.options.url, { scheme: true })}: another client connected with the same clientId "${this.clientId}" and took over its session (DISCONNECT 0x8E). ` +
          'Two receivers sharing one session steal it from each other and get messages twice, so this one stopped; the other keeps receiving. ' +
          'Give each receiver its own clientId (or the same "group" to split the channel between them), or stop the other one.',
      ),
    );
  }

  /**
   * MQTT 3.1.1 has no DISCONNECT from the server, and some MQTT 5 brokers (Mosquitto 2.0) do not
   * send one on a takeover either: it is a connection closed right after it was accepted, without a
   * socket error. Returns the warning when several came in a row. Not a certainty (a broker may
   * close connections for other reasons), so the source keeps trying, with a growing delay.
   */
  private countQuickClose(): string | undefined {
    const lived = this.connectedAt === undefined ? Infinity : performance.now() - this.connectedAt;
    const quick = !this.connectionErrored && lived < QUICK_CLOSE_MS;
    this.connectedAt = undefined;
    this.quickCloses = quick ? this.quickCloses + 1 : 0;
    if (this.quickCloses < QUICK_CLOSES_FOR_TAKEOVER) return undefined;
    if (this.quickCloses === QUICK_CLOSES_FOR_TAKEOVER) this.counters.takeovers++;
    const warning =
      `the broker closed the connection right after accepting it ${this.quickCloses} times in a row: most likely another client uses the same clientId "${this.clientId}" and they keep taking the session from each other (messages come twice). ` +
      'Give each receiver its own clientId, or stop the other one';
    this.log.error(`flespi MQTT at ${safeHost(this.options.url, { scheme: true })}: ${warning}`);
    return warning;
  }

  /** A refusal that will not go away by retrying (bad token, lost access): next() rejects with it. */
  private fail(error: Error): void {
    if (this.fatal) return;
    this.fatal = error;
    this.reconnects.cancel();
    this.client?.end(true);
    this.setState('offline', error.message);
    this.log.error(error.message);
    this.wake();
  }

  private setState(state: MqttConnectionState, detail?: string): void {
    this.currentState = state;
    this.options.onState?.(state, detail);
  }

  // ---- messages

  private onPublish(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const ack: PendingAck | undefined =
      packet.qos > 0 && packet.messageId !== undefined ? { messageId: packet.messageId, connection: this.connection, done: false } : undefined;
    if (ack) this.acks.push(ack);
    const { message, error } = parsePayload(packet.payload);
    if (message === undefined) {
      this.counters.malformed++;
      this.log.warn(`skipped a message on ${packet.topic}: ${error}; it is acknowledged since it can never be handled`);
      if (ack) {
        ack.done = true;
        this.flushAcks();
      }
    } else {
      if (packet.dup) this.counters.redelivered++;
      this.remember(message);
      this.enqueue({ message, ack });
    }
    if (!ack) return callback();
    if (this.acks.length < this.maxUnacked) return callback(ACK_LATER);
    // Too many unacknowledged: stop reading until ack() makes room (TCP pushes back on the broker).
    this.resumeReading = () => callback(ACK_LATER);
  }

  private enqueue(entry: Received): void {
    if (this.pending.length === 0) this.pendingSince = performance.now();
    this.pending.push(entry);
    // Wake next() only when it has something new to decide on.
    if (this.pending.length === 1 || this.pending.length >= this.batchMaxMessages) this.wake();
  }

  private cutBatch(): SourceBatch {
    const entries = this.pending.splice(0, this.batchMaxMessages);
    if (this.pending.length > 0) this.pendingSince = performance.now();
    const acks: PendingAck[] = [];
    const messages: FlespiMessage[] = [];
    for (const entry of entries) {
      messages.push(entry.message);
      if (entry.ack) acks.push(entry.ack);
    }
    this.counters.received += messages.length;
    const batch: SourceBatch = { seq: ++this.seq, messages };
    if (acks.length > 0) this.batchAcks.set(batch, acks);
    return batch;
  }

  /** Sends the PUBACKs that are due, in arrival order, in one write. */
  private flushAcks(): void {
    let released = 0;
    while (released < this.acks.length && this.acks[released].done) released++;
    if (released === 0) return;
    const due = this.acks.splice(0, released).filter((ack) => ack.connection === this.connection);
    const stream = this.client?.stream;
    if (due.length > 0 && this.client?.connected && stream && !stream.destroyed) {
      // PUBACK is 4 bytes: type, remaining length 2, packet id (MQTT 5 allows omitting reason code 0 this way).
      const bytes = Buffer.allocUnsafe(due.length * 4);
      due.forEach((ack, i) => {
        bytes[i * 4] = 0x40;
        bytes[i * 4 + 1] = 2;
        bytes.writeUInt16BE(ack.messageId, i * 4 + 2);
      });
      stream.write(bytes);
    }
    if (this.resumeReading && this.acks.length < this.maxUnacked) {
      const resume = this.resumeReading;
      this.resumeReading = undefined;
      resume();
    }
  }

  private waitForMessages(signal: AbortSignal, timeoutMs: number | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, Math.max(timeoutMs, 0));
      signal.addEventListener('abort', onAbort, { once: true });
      this.wakeWaiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.wakeWaiters;
    this.wakeWaiters = [];
    for (const wake of waiters) wake();
  }

  // ---- gap fill

  /**
   * Remembers what a gap fill needs of a message MQTT delivered: the newest `server.timestamp` (where
   * a gap starts) and the messages stamped with it (REST returns them again), by reference, so the
   * hot path computes no keys; while a gap fill runs, the content keys of everything received.
   */
  private remember(message: FlespiMessage): void {
    const timestamp = message['server.timestamp'];
    if (typeof timestamp === 'number') {
      if (this.lastServerTimestamp === undefined || timestamp > this.lastServerTimestamp) {
        this.lastServerTimestamp = timestamp;
        this.atLastServerTimestamp = [message];
      } else if (timestamp === this.lastServerTimestamp && this.atLastServerTimestamp.length < BOUNDARY_KEPT) {
        this.atLastServerTimestamp.push(message);
      }
    }
    if (this.fillsRunning.size === 0) return;
    const key = messageKey(message);
    for (const keys of this.fillsRunning) if (keys.size < FILL_KEYS_KEPT) keys.add(key);
  }

  /** Reads [from, flespi's now + margin] over REST, skipping what MQTT delivered (`boundary`, and what arrives meanwhile). */
  private async fillGap(start: number | undefined, boundary: readonly FlespiMessage[]): Promise<void> {
    const gapFill = this.options.gapFill;
    if (!gapFill || start === undefined) return;
    /** What MQTT delivered: the boundary, and (added by remember()) what arrives while this runs. */
    const delivered = new Set(boundary.map(messageKey));
    this.fillsRunning.add(delivered);
    try {
      const { added } = await fillGap({
        client: gapFill.client,
        channelId: this.options.channelId,
        filter: this.options.filter,
        from: start,
        newestSeen: () => this.lastServerTimestamp,
        pageSize: gapFill.pageSize,
        delivered,
        signal: this.gapFillAbort.signal,
        log: this.log,
        onMessages: (messages, skipped) => {
          this.counters.duplicatesSkipped += skipped;
          this.counters.gapFilled += messages.length;
          for (const message of messages) this.enqueue({ message });
        },
      });
      this.log.info(`filled the gap over REST: ${added} message(s) from ${new Date(start * 1000).toISOString()}`);
    } catch (error) {
      if (!this.closing) this.log.warn(`could not fill the gap over REST (messages published while disconnected may be missing): ${errorMessage(error)}`);
    } finally {
      this.fillsRunning.delete(delivered);
    }
  }

  // ---- errors

  private classifyError(error: Error & { code?: unknown }): FlespiError {
    const code = typeof error.code === 'number' ? error.code : undefined;
    const where = safeHost(this.options.url, { scheme: true });
    if (code !== undefined && /Connection refused/i.test(error.message)) {
      if (code === 134 || code === 135 || code === 4 || code === 5) {
        return new FlespiError('auth', `flespi MQTT refused the token (CONNACK ${code}): check the token (create one at https://flespi.io/#/panel/tokens)`, {
          cause: error,
        });
      }
      if (code === 138)
        return new FlespiError(
          'forbidden',
          `flespi MQTT refused the token (CONNACK 138 banned): the token or account is blocked; check it in the flespi panel`,
          { cause: error },
        );
      // MQTT 3.1.1 has no "bad credentials" of its own that flespi uses: it answers 2 "identifier
      // rejected" to a wrong or expired token (flespi-io-js and the Toolbox treat 2 as a bad token).
      // A broker following the letter of 3.1.1 means the client id: say both.
      if (code === 2) {
        return new FlespiError(
          'auth',
          `flespi MQTT refused the token (CONNACK 2 "identifier rejected", flespi's answer to a wrong or expired token over MQTT 3.1.1): check the token (create one at https://flespi.io/#/panel/tokens); if the token is right, the broker may refuse the client id "${this.clientId}": set another clientId`,
          { cause: error },
        );
      }
      if (code === 133)
        return new FlespiError('bad-request', `flespi MQTT rejected the client id "${this.clientId}" (CONNACK 133): set another clientId`, { cause: error });
      return new FlespiError('server', `flespi MQTT at ${where} refused the connection (CONNACK ${code}: ${error.message}); retrying`, { cause: error });
    }
    return new FlespiError('network', `cannot connect to flespi MQTT at ${where}: ${error.message}`, { cause: error });
  }

  private subscribeError(error: unknown): FlespiError {
    const code = subackRefusal(error);
    if (code === 135 || code === 0x80) {
      return new FlespiError(
        'forbidden',
        `flespi MQTT refused the subscription to ${this.topic} (SUBACK ${code}): the token has no access to channel ${this.options.channelId}`,
        { cause: error },
      );
    }
    if (code === 143)
      return new FlespiError(
        'bad-request',
        `flespi MQTT refused the subscription to ${this.topic} (SUBACK 143 topic filter invalid): check the filter expression and group name`,
        { cause: error },
      );
    // The broker lacks a feature the topic needs: retrying cannot change that, so the source stops.
    if (code === 158)
      return new FlespiError(
        'bad-request',
        `the MQTT broker refused the subscription to ${this.topic} (SUBACK 158 shared subscriptions not supported): remove source.group or use a broker that supports $share`,
        { cause: error },
      );
    if (code === 162)
      return new FlespiError(
        'bad-request',
        `the MQTT broker refused the subscription to ${this.topic} (SUBACK 162 wildcard subscriptions not supported): use a broker that supports wildcards (flespi does)`,
        { cause: error },
      );
    return new FlespiError('network', `subscribing to ${this.topic} failed: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * `flespi-receiver-{channel}-{host}[-{hash}]`: a different group or filter gets its own session (an
 * old subscription does not linger in it), and so does each position owner (a config's checkpoint).
 */
export function defaultClientId(channelId: number, group?: string, filter?: string, owner?: string): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '')
      .slice(0, 40) || 'host';
  const parts = owner ? `${group ?? ''}\n${filter ?? ''}\n${owner}` : `${group ?? ''}\n${filter ?? ''}`;
  const variant =
    group || filter || owner
      ? `-${createHash('sha256')
          .update(parts)
          .digest('hex')
          .slice(0, owner ? 10 : 6)}`
      : '';
  return `flespi-receiver-${channelId}-${host}${variant}`;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`MqttSource ${name} must be a positive integer, got ${value}`);
  return value;
}
