/**
 * Forwards flespi messages to Wialon (or any Wialon Retranslator v1.0 receiver) over one persistent TCP
 * connection: one packet per message, up to `window` packets in flight, one 0x11 ack per packet.
 *
 * Delivery is at-least-once: packets not acked when the connection drops or an ack times out are resent on a
 * new connection, so the receiver may see some twice. See docs/wialon.md.
 *
 * A message that can never be sent (no usable ident or timestamp, or a packet over the 16 MB that receivers
 * accept) goes to ctx.reject with the reason, and the rest of the batch goes on. A Wialon server that cannot be
 * reached is a TransientError (retried, never dead-lettered); one that takes the connection but then closes it
 * or stops acking without progress fails with a plain error, which the receiver retries and, if it persists
 * while other packets get through, isolates.
 */
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TransientError, UndeliverableError } from '../errors';
import { Handler, type HandlerContext, type HandlerHealth } from '../handler';
import type { FlespiMessage } from '../message';
import type { Logger } from '../logger';
import type { OptionsSchema } from '../optionSchema';
import { ConfigError, OptionReader } from '../options';
import type { HandlerSpec } from './spec';
import { ACK_BYTE, DEFAULT_MAX_PACKET_BYTES, WialonEncodeError, encodeMessage, type EncodeIssue } from '../wialon/codec';

export interface WialonHandlerOptions {
  host: string;
  port: number;
  /** Fail the attempt when packets await an ack and none arrived for this long. */
  ackTimeoutMs: number;
  /** Packets sent but not yet acked, at most. 1 = stop-and-wait. */
  window: number;
  connectTimeoutMs: number;
}

export const WIALON_DEFAULTS = { ackTimeoutMs: 10_000, window: 16, connectTimeoutMs: 10_000 } as const;

/** Reconnects within one handle() call after a lost connection, when no ack arrived in between. */
const RECONNECTS_WITHOUT_PROGRESS = 3;
const RECONNECT_DELAY_MS = 250;
/** Distinct parameter issues logged at warn level; beyond this they are only counted. */
const LOGGED_ISSUES_LIMIT = 200;

/** The ack did not come in time; the connection was dropped so a late ack cannot be credited to another packet. */
export class WialonAckTimeoutError extends Error {
  override readonly name = 'WialonAckTimeoutError';
}

/**
 * A batch being delivered. Packets are encoded as they are needed (at most one window ahead of the sends),
 * so sending starts at once and encoding overlaps the wait for acks; retries reuse what is encoded.
 */
interface PendingBatch {
  messages: readonly FlespiMessage[];
  /** Messages 0..encoded-1 are encoded into `packets` or skipped as unsendable. */
  encoded: number;
  packets: Buffer[];
  /** Packets 0..acked-1 are acknowledged. Acks arrive in order, so they always form a prefix. */
  acked: number;
  /** Packets 0..sent-1 went out at least once (to count resends). */
  sent: number;
  /** Messages that can never be sent, by index, with why: told to ctx.reject in every attempt (a failed attempt's rejections do not count). */
  rejected: Map<number, UndeliverableError>;
}

/** Encoding a message failed for a reason other than the message itself being unsendable: not retried. */
class EncodeFailure {
  constructor(readonly cause: unknown) {}
}

export interface WialonStats {
  packetsSent: number;
  packetsAcked: number;
  /** Sends of a packet that had been sent before without an ack. */
  packetsResent: number;
  connects: number;
  /** Messages that can never be sent (no usable ident or timestamp, too large): rejected to the receiver's dead letters, not retried. */
  messagesSkipped: number;
  /** Parameters skipped, renamed or converted to JSON text (each occurrence). */
  parameterIssues: number;
}

export class WialonHandler extends Handler {
  readonly stats: WialonStats = { packetsSent: 0, packetsAcked: 0, packetsResent: 0, connects: 0, messagesSkipped: 0, parameterIssues: 0 };

  private socket: Socket | undefined;
  private awaitingAck = 0;
  private lastError: string | undefined;
  private stopped = false;
  private readonly batches = new WeakMap<readonly FlespiMessage[], PendingBatch>();
  private readonly loggedIssues = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly options: WialonHandlerOptions,
    name?: string,
  ) {
    super(name ?? 'wialon');
  }

  private get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** Tries to connect once; an unreachable peer is only a warning here, since handle() connects again. */
  override async start(): Promise<void> {
    try {
      this.socket = await this.connect(new AbortController().signal);
    } catch (error) {
      this.log.warn(`${this.name}: ${message(error)}; will try again when messages arrive`);
    }
  }

  override handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    // Batches are not expected to overlap; if they do, they take turns so acks are never shared.
    const run = this.queue.then(() => this.deliver(messages, ctx));
    this.queue = run.catch(() => {});
    return run;
  }

  override async stop(): Promise<void> {
    this.stopped = true;
    this.drop();
  }

  override health(): HandlerHealth {
    const parts = [`${this.awaitingAck} packets awaiting ack`];
    if (this.stats.messagesSkipped) parts.push(`${this.stats.messagesSkipped} messages rejected as unsendable (no ident/timestamp, or too large)`);
    if (!this.socket && this.lastError) parts.push(this.lastError);
    return { connected: this.socket !== undefined, detail: parts.join(', ') };
  }

  private async deliver(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    if (this.stopped) throw new TransientError(`${this.name} is stopped`);
    const batch = this.batchFor(messages);
    for (const [index, reason] of batch.rejected) ctx.reject(index, reason); // found in an earlier attempt of this batch
    let failures = 0;
    // packetAt(batch.acked) is the first packet not yet acknowledged; none left means the batch is delivered.
    while (this.packetAt(batch, batch.acked, ctx)) {
      ctx.signal.throwIfAborted();
      const ackedBefore = batch.acked;
      try {
        this.socket ??= await this.connect(ctx.signal);
        await this.pump(this.socket, batch, ctx);
      } catch (error) {
        // Whatever went wrong, this connection's ack count can no longer be trusted.
        this.drop();
        if (error instanceof EncodeFailure) throw error.cause;
        this.lastError = message(error);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (error instanceof WialonAckTimeoutError) throw error;
        failures = batch.acked > ackedBefore ? 1 : failures + 1;
        if (failures > RECONNECTS_WITHOUT_PROGRESS) throw error;
        const wait = RECONNECT_DELAY_MS * 2 ** (failures - 1);
        const unacked = batch.sent - batch.acked;
        ctx.log.warn(`${this.name}: ${message(error)}; reconnecting in ${wait} ms${unacked ? ` to resend ${unacked} unacknowledged packets` : ''}`);
        await sleep(wait, undefined, { signal: ctx.signal });
      }
    }
    this.batches.delete(messages);
    this.lastError = undefined;
  }

  /** The batch's delivery state; a retry of the same messages continues where the last attempt stopped. */
  private batchFor(messages: readonly FlespiMessage[]): PendingBatch {
    let batch = this.batches.get(messages);
    if (!batch) this.batches.set(messages, (batch = { messages, encoded: 0, packets: [], acked: 0, sent: 0, rejected: new Map() }));
    return batch;
  }

  /**
   * Packet `index` of the batch, encoding messages up to it if needed (each message once); undefined when
   * the messages are used up. Messages that can never be sent are rejected (ctx.reject) and get no packet.
   */
  private packetAt(batch: PendingBatch, index: number, ctx: HandlerContext): Buffer | undefined {
    if (index < batch.packets.length) return batch.packets[index]; // the usual case: encoded one window ahead
    const log = ctx.log;
    const options = { onIssue: (issue: EncodeIssue) => this.noteIssue(issue, log) };
    while (index >= batch.packets.length && batch.encoded < batch.messages.length) {
      const at = batch.encoded;
      const msg = batch.messages[at];
      let unsendable: UndeliverableError | undefined;
      try {
        const packet = encodeMessage(msg, options);
        // The whole packet, size field included, as PacketSplitter counts it against the same limit.
        if (packet.length > DEFAULT_MAX_PACKET_BYTES)
          unsendable = new UndeliverableError(`the Wialon packet would be ${packet.length} bytes; Wialon receivers accept at most ${DEFAULT_MAX_PACKET_BYTES}`);
        else batch.packets.push(packet);
      } catch (error) {
        if (!(error instanceof WialonEncodeError)) throw error;
        unsendable = new UndeliverableError(`the message cannot be sent to Wialon: ${error.message}`, { cause: error });
      }
      batch.encoded++;
      if (unsendable) {
        this.stats.messagesSkipped++;
        batch.rejected.set(at, unsendable);
        const line = `${this.name}: ${unsendable.message}`;
        if (this.stats.messagesSkipped === 1) log.warn(`${line} (rejected as undeliverable; further ones are counted in the status)`);
        else log.debug(line);
        ctx.reject(at, unsendable);
      }
    }
    return batch.packets[index];
  }

  private noteIssue(issue: EncodeIssue, log: Logger): void {
    this.stats.parameterIssues++;
    const key = `${issue.action}:${issue.parameter}`;
    if (this.loggedIssues.has(key) || this.loggedIssues.size >= LOGGED_ISSUES_LIMIT) return;
    this.loggedIssues.add(key);
    const what = issue.action === 'renamed' ? `sent as "${issue.sentAs}"` : issue.action === 'converted' ? 'sent as JSON text' : 'not sent';
    const line = `${this.name}: parameter "${issue.parameter}" ${what}: ${issue.reason} (logged once)`;
    if (issue.action === 'skipped') log.warn(line);
    else log.info(line);
  }

  private connect(signal: AbortSignal): Promise<Socket> {
    const { host, port, connectTimeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port });
      const done = (error?: Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('connect', onConnect);
        socket.off('error', onError);
        if (error) {
          socket.destroy();
          reject(error);
        }
      };
      const onConnect = () => {
        done();
        this.stats.connects++;
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        socket.on('error', () => {}); // reported through 'close' (or the running attempt's own listener)
        socket.once('close', () => {
          if (this.socket === socket) this.socket = undefined;
        });
        this.log.debug(`${this.name}: connected to ${this.address}`);
        resolve(socket);
      };
      const onError = (error: Error) => done(new TransientError(`cannot connect to Wialon at ${this.address}: ${error.message}`, { cause: error }));
      const onAbort = () => done(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      const timer = setTimeout(
        () => done(new TransientError(`cannot connect to Wialon at ${this.address}: no answer within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      socket.once('connect', onConnect);
      socket.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Sends the unacked rest of `batch` on `socket`, keeping `window` packets in flight and encoding up to one
   * window ahead; resolves when all are acked. Rejects with an EncodeFailure when encoding throws unexpectedly.
   */
  private pump(socket: Socket, batch: PendingBatch, ctx: HandlerContext): Promise<void> {
    const signal = ctx.signal;
    const { window, ackTimeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      let next = batch.acked;
      let lastProgress = performance.now();
      let timer: NodeJS.Timeout | undefined;

      const finish = (error?: Error | EncodeFailure) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
        signal.removeEventListener('abort', onAbort);
        this.awaitingAck = 0;
        if (error) reject(error);
        else resolve();
      };
      const watchAcks = () => {
        if (timer || next === batch.acked) return;
        timer = setTimeout(
          () => {
            timer = undefined;
            if (next === batch.acked) return;
            const idle = performance.now() - lastProgress;
            if (idle >= ackTimeoutMs)
              finish(new WialonAckTimeoutError(`Wialon at ${this.address} did not acknowledge ${next - batch.acked} packets within ${ackTimeoutMs} ms`));
            else watchAcks();
          },
          ackTimeoutMs - (performance.now() - lastProgress),
        );
      };
      const send = () => {
        socket.cork();
        try {
          let packet: Buffer | undefined;
          while (next - batch.acked < window && (packet = this.packetAt(batch, next, ctx))) {
            socket.write(packet);
            this.stats.packetsSent++;
            if (next < batch.sent) this.stats.packetsResent++;
            else batch.sent = next + 1;
            next++;
          }
        } finally {
          socket.uncork();
        }
      };
      const fill = () => {
        if (next - batch.acked >= window) return;
        if (next === batch.acked) lastProgress = performance.now();
        try {
          send();
          // Encode what the next acks will let out now, while these packets are in flight, not when the acks arrive.
          this.packetAt(batch, next + window - 1, ctx);
        } catch (error) {
          return finish(new EncodeFailure(error));
        }
        this.awaitingAck = next - batch.acked;
        if (next === batch.acked) return finish(); // every packet acked and no message left
        watchAcks();
      };
      const onData = (chunk: Buffer) => {
        for (const byte of chunk) {
          if (byte !== ACK_BYTE)
            return finish(new Error(`Wialon at ${this.address} sent 0x${byte.toString(16).padStart(2, '0')} where only the ack byte 0x11 is expected`));
          if (batch.acked === next) return finish(new Error(`Wialon at ${this.address} sent more acks than packets awaiting one`));
          batch.acked++;
          this.stats.packetsAcked++;
        }
        lastProgress = performance.now();
        this.awaitingAck = next - batch.acked;
        fill();
      };
      const onClose = () => finish(new Error(`Wialon at ${this.address} closed the connection with ${next - batch.acked} packets awaiting ack`));
      const onError = (error: Error) => finish(new Error(`connection to Wialon at ${this.address} failed: ${error.message}`));
      const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));

      if (socket.destroyed) return onClose();
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
      fill();
    });
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.awaitingAck = 0;
    socket?.destroy();
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const wialonOptions = {
  host: {
    type: 'string',
    required: true,
    description: 'Host name or IP address of the Wialon Retranslator receiver (without port).',
    examples: ['retranslator.example.com'],
  },
  port: { type: 'integer', required: true, minimum: 1, maximum: 65_535, description: 'TCP port of the receiver.', examples: [20163] },
  ackTimeoutMs: {
    type: 'integer',
    minimum: 100,
    maximum: 600_000,
    default: WIALON_DEFAULTS.ackTimeoutMs,
    description: 'Fail a batch when no acknowledgement arrived for this long (ms).',
  },
  window: {
    type: 'integer',
    minimum: 1,
    maximum: 10_000,
    default: WIALON_DEFAULTS.window,
    description:
      'Packets awaiting acknowledgement at once (1 = stop-and-wait); the rate is at most window ÷ round-trip time, so raise it for a distant server.',
  },
  connectTimeoutMs: {
    type: 'integer',
    minimum: 100,
    maximum: 600_000,
    default: WIALON_DEFAULTS.connectTimeoutMs,
    description: 'How long to wait for the TCP connection (ms).',
  },
} as const satisfies OptionsSchema;

export const wialonSpec: HandlerSpec = {
  type: 'wialon',
  title: 'Wialon Retranslator: one TCP packet per message, acked by the receiver',
  options: wialonOptions,
  create(options, _env, name) {
    const read = new OptionReader(options, `handler "${name}" (wialon)`);
    const host = read.option('host', wialonOptions.host);
    if (/^[a-z]+:\/\//i.test(host) || /^[^:]+:\d+$/.test(host)) {
      throw new ConfigError(`handler "${name}" (wialon): "host" must be a host name or IP address only, got ${JSON.stringify(host)}; put the port in "port"`);
    }
    const handler = new WialonHandler(
      {
        host,
        port: read.option('port', wialonOptions.port),
        ackTimeoutMs: read.option('ackTimeoutMs', wialonOptions.ackTimeoutMs),
        window: read.option('window', wialonOptions.window),
        connectTimeoutMs: read.option('connectTimeoutMs', wialonOptions.connectTimeoutMs),
      },
      name,
    );
    read.rejectUnknown(['type', 'name']);
    return handler;
  },
};
