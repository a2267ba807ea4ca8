/**
 * A Wialon Retranslator receiving peer for tests and benchmarks: a real TCP server that frames and
 * strictly decodes every packet and acks each correct one with 0x11, with fault modes to exercise senders.
 *
 * A malformed packet gets no ack, its reason is recorded in `rejected`, and the connection is closed: a sender
 * that counts acks against its queue would otherwise credit the next ack to the wrong packet.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { ACK_BYTE, PacketSplitter, WialonDecodeError, decodePacket, type WialonPacket } from '../../src/core/wialon/codec';

export interface ReceivedPacket {
  packet: WialonPacket;
  /** The packet's bytes, size field included. */
  bytes: Buffer;
  /** 1 for the first accepted connection, 2 for the next, ... */
  connection: number;
}

export interface RejectedPacket {
  reason: string;
  connection: number;
}

interface Waiter {
  count: number;
  resolve: (packets: WialonPacket[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class WialonTestReceiver {
  /** Every correctly decoded packet, in arrival order (also while acks are paused). */
  readonly received: ReceivedPacket[] = [];
  /** Packets or streams that failed to decode, with what was wrong. */
  readonly rejected: RejectedPacket[] = [];
  /** Connections accepted so far. */
  connectionCount = 0;
  /** 0x11 bytes written so far. */
  acksSent = 0;

  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private waiters: Waiter[] = [];
  private acking = true;
  private ackDelayMs = 0;
  private closeAfterPackets: number | undefined;

  constructor() {
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Decoded packets in arrival order. */
  get packets(): WialonPacket[] {
    return this.received.map((r) => r.packet);
  }

  /** Starts listening; resolves with the port (a free one when `port` is 0). */
  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** Resolves once at least `count` packets have been decoded; rejects after `timeoutMs` saying how many came. */
  waitFor(count: number, timeoutMs = 10_000): Promise<WialonPacket[]> {
    if (this.received.length >= count) return Promise.resolve(this.packets);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`Wialon test receiver: got ${this.received.length} of ${count} packets within ${timeoutMs} ms (${this.rejected.length} rejected)`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Keep decoding and recording packets, but send no acks (they are not sent later either). */
  pauseAcks(): void {
    this.acking = false;
  }

  resumeAcks(): void {
    this.acking = true;
  }

  /** Send each ack `ms` after its packet was decoded (0 = at once). */
  setAckDelay(ms: number): void {
    this.ackDelayMs = ms;
  }

  /**
   * After `count` more packets (counted over all connections), record that last packet without acking it and
   * close every connection: a connection lost mid-stream.
   */
  closeConnectionsAfter(count: number): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`closeConnectionsAfter: count must be an integer ≥ 1, got ${count}`);
    this.closeAfterPackets = count;
  }

  /** Close every open connection now (the server keeps listening). */
  closeConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Stops listening, closes connections and timers, and rejects pending waitFor calls. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('Wialon test receiver closed'));
    }
    this.waiters = [];
    this.closeConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    const connection = ++this.connectionCount;
    const splitter = new PacketSplitter();
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let acks = 0;
      try {
        for (const bytes of splitter.push(chunk)) {
          const packet = decodePacket(bytes);
          this.received.push({ packet, bytes, connection });
          if (this.closeAfterPackets !== undefined && --this.closeAfterPackets <= 0) {
            this.closeAfterPackets = undefined;
            this.ack(socket, acks);
            this.notify();
            this.closeConnections();
            return;
          }
          if (this.acking) acks++;
        }
      } catch (error) {
        const reason = error instanceof WialonDecodeError || error instanceof Error ? error.message : String(error);
        this.rejected.push({ reason, connection });
        this.ack(socket, acks);
        this.notify();
        socket.destroy();
        return;
      }
      this.ack(socket, acks);
      this.notify();
    });
  }

  /** One 0x11 per packet; written together when several packets arrived in one read. */
  private ack(socket: Socket, count: number): void {
    if (count === 0) return;
    const write = () => {
      if (socket.destroyed) return;
      socket.write(Buffer.alloc(count, ACK_BYTE));
      this.acksSent += count;
    };
    if (this.ackDelayMs <= 0) return write();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      write();
    }, this.ackDelayMs);
    this.timers.add(timer);
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => this.received.length >= w.count);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => this.received.length < w.count);
    for (const waiter of ready) {
      clearTimeout(waiter.timer);
      waiter.resolve(this.packets);
    }
  }
}

/** Creates a receiver and starts it listening (port 0 = any free port). */
export async function startWialonTestReceiver(port = 0, host = '127.0.0.1'): Promise<{ receiver: WialonTestReceiver; port: number }> {
  const receiver = new WialonTestReceiver();
  return { receiver, port: await receiver.listen(port, host) };
}
