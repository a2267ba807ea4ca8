// A scripted MQTT 5 broker over a real TCP socket, for answers neither the sandbox nor Mosquitto
// gives: a CONNACK with any reason code (or none at all), and a SUBACK code chosen per topic filter
// (e.g. refuse `$share/...` with 0x9E "shared subscriptions not supported"). It delivers nothing.
//
//   const broker = await startFakeMqtt({ suback: (topic) => (topic.startsWith('$share/') ? 0x9e : 1) });
//   ... connect a client to broker.url ...
//   broker.subscriptions   // every topic filter asked for
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { generate, parser as createParser, type Packet } from 'mqtt-packet';

export interface FakeMqttOptions {
  /** The CONNACK reason code (default 0); `'never'` leaves the client waiting. */
  connack?: number | 'never';
  /** The SUBACK code for a topic filter (default 1: granted QoS 1); `'never'` sends no SUBACK. */
  suback?: (topic: string) => number | 'never';
}

export class FakeMqtt {
  /** Every topic filter subscribed, in order. */
  readonly subscriptions: string[] = [];
  /** Usernames of the CONNECT packets. */
  readonly usernames: (string | undefined)[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: FakeMqttOptions = {}) {
    this.server = createServer((socket) => this.serve(socket));
  }

  get url(): string {
    return `mqtt://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const parser = createParser({ protocolVersion: 5 });
    const send = (packet: Packet) => socket.write(generate(packet, { protocolVersion: 5 }));
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') {
        this.usernames.push(packet.username);
        const code = this.options.connack ?? 0;
        if (code === 'never') return;
        send({ cmd: 'connack', reasonCode: code, sessionPresent: false });
        if (code >= 0x80) socket.end();
      } else if (packet.cmd === 'subscribe') {
        const codes = packet.subscriptions.map((s) => {
          this.subscriptions.push(s.topic);
          return this.options.suback?.(s.topic) ?? 1;
        });
        if (codes.includes('never')) return;
        send({ cmd: 'suback', messageId: packet.messageId, granted: codes as number[] });
      } else if (packet.cmd === 'unsubscribe') {
        send({ cmd: 'unsuback', messageId: packet.messageId, granted: packet.unsubscriptions.map(() => 0) } as Packet);
      } else if (packet.cmd === 'pingreq') {
        send({ cmd: 'pingresp' });
      } else if (packet.cmd === 'disconnect') {
        socket.end();
      }
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (data) => parser.parse(data));
  }
}

export function startFakeMqtt(options?: FakeMqttOptions): Promise<FakeMqtt> {
  return new FakeMqtt(options).listen();
}
