// A scripted MQTT broker (3.1.1 and 5) over a real TCP socket, for answers neither the sandbox nor
// Mosquitto gives: a CONNACK with any reason code (or none at all), a SUBACK code chosen per topic
// filter (e.g. refuse `$share/...` with 0x9E "shared subscriptions not supported"), a DISCONNECT
// with a chosen reason code, publishes with chosen packet ids and DUP flags. It records what the
// client sent: CONNECT packets, topic filters, PUBACK packet ids, PUBLISH packets (answered with a
// chosen PUBACK reason code, or not at all until `ack()`). With `tls` it listens for mqtts://.
//
//   const broker = await startFakeMqtt({ suback: (topic) => (topic.startsWith('$share/') ? 0x9e : 1) });
//   ... connect a client to broker.url ...
//   broker.subscriptions   // every topic filter asked for
//   broker.publish('flespi/message/gw/channels/1/2', { ident: 'a' }, { messageId: 7 });
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { generate, parser as createParser, type IConnackPacket, type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';

export interface FakeMqttOptions {
  /**
   * The CONNACK reason code (default 0), or per connection (counted from 1): a code, `'never'` (leave
   * the client waiting), `'close'` (end the connection without a CONNACK) or a code with the
   * session-present flag and CONNACK properties (MQTT 5, e.g. maximumPacketSize).
   */
  connack?:
    | number
    | 'never'
    | 'close'
    | ((connection: number) => number | 'never' | 'close' | { code: number; sessionPresent: boolean; properties?: IConnackPacket['properties'] });
  /** The SUBACK code for a topic filter (default 1: granted QoS 1); `'never'` sends no SUBACK. */
  suback?: (topic: string) => number | 'never';
  /** The PUBACK reason code for a QoS 1 PUBLISH from the client (default 0); `'never'` leaves it to `ack()`. */
  puback?: (packet: IPublishPacket, index: number) => number | 'never';
  /** Serve MQTT over TLS with these options (key, cert, ALPNProtocols...): the url becomes mqtts://. */
  tls?: TlsOptions;
}

interface Connection {
  socket: Socket;
  protocolVersion: 4 | 5;
}

export class FakeMqtt {
  /** Every topic filter subscribed, in order. */
  readonly subscriptions: string[] = [];
  /** Usernames of the CONNECT packets. */
  readonly usernames: (string | undefined)[] = [];
  /** Every CONNECT packet, in order. */
  readonly connects: IConnectPacket[] = [];
  /** Packet ids of the PUBACKs received, in order, with the connection (counted from 1) each came on. */
  readonly pubacks: { messageId: number; connection: number }[] = [];
  /** Every PUBLISH from the client, in order, with its size on the wire and its connection. */
  readonly publishes: { packet: IPublishPacket; bytes: number; connection: number }[] = [];
  /** Per TLS connection, the ALPN protocol agreed on (false when the client offered none the server has). */
  readonly alpn: (string | false)[] = [];
  /** How many DISCONNECT packets clients sent. */
  disconnects = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private current?: Connection;
  private nextMessageId = 1;

  constructor(private readonly options: FakeMqttOptions = {}) {
    const tls = options.tls;
    this.server = tls
      ? createTlsServer(tls, (socket: TLSSocket) => {
          this.alpn.push(socket.alpnProtocol ?? false);
          this.serve(socket);
        })
      : createServer((socket) => this.serve(socket));
    // A client that gives up on the TLS handshake is no error of the fake broker.
    this.server.on('tlsClientError', () => {});
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`;
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

  /** Sends a PUBLISH to the newest connection (QoS 1 unless `qos: 0`); returns its packet id. */
  publish(topic: string, payload: unknown, { qos = 1, dup = false, messageId }: { qos?: 0 | 1; dup?: boolean; messageId?: number } = {}): number {
    const connection = this.connection();
    const id = messageId ?? this.nextMessageId++;
    const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    this.send(connection, { cmd: 'publish', topic, payload: body, qos, dup, retain: false, ...(qos > 0 ? { messageId: id } : {}) } as Packet);
    return id;
  }

  /** Sends the PUBACK of a client's publish (for `puback: () => 'never'`), with this reason code (MQTT 5). */
  ack(messageId: number, reasonCode = 0): void {
    this.send(this.connection(), { cmd: 'puback', messageId, reasonCode } as Packet);
  }

  /** Sends raw bytes to the newest connection (e.g. a packet the client must not accept). */
  sendRaw(bytes: Buffer): void {
    this.connection().socket.write(bytes);
  }

  /** Stops reading from the newest connection, so the client's writes back up. */
  stopReading(): void {
    this.connection().socket.pause();
  }

  /** Resets the newest connection (TCP RST), which the client sees as ECONNRESET. */
  reset(): void {
    const socket = this.connection().socket;
    if ('resetAndDestroy' in socket && !this.options.tls) socket.resetAndDestroy();
    else socket.destroy();
  }

  /** Ends the newest connection: with a DISCONNECT of this reason code first (MQTT 5), or by closing the socket. */
  disconnect(reasonCode?: number): void {
    const connection = this.connection();
    if (reasonCode !== undefined) this.send(connection, { cmd: 'disconnect', reasonCode } as Packet);
    connection.socket.end();
  }

  private connection(): Connection {
    if (!this.current || this.current.socket.destroyed) throw new Error('no client is connected to the fake MQTT broker');
    return this.current;
  }

  private send(connection: Connection, packet: Packet): void {
    connection.socket.write(generate(packet, { protocolVersion: connection.protocolVersion }));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const connection: Connection = { socket, protocolVersion: 5 };
    let number = 0;
    // The parser learns the protocol version from the CONNECT packet.
    const parser = createParser();
    const send = (packet: Packet) => this.send(connection, packet);
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') {
        connection.protocolVersion = packet.protocolVersion === 5 ? 5 : 4;
        this.connects.push(packet);
        this.usernames.push(packet.username);
        number = this.connects.length;
        this.current = connection;
        const option = this.options.connack ?? 0;
        const answer = typeof option === 'function' ? option(number) : option;
        if (answer === 'never') return;
        if (answer === 'close') return void socket.end();
        const { code, sessionPresent, properties } = typeof answer === 'number' ? { code: answer, sessionPresent: false, properties: undefined } : answer;
        send(
          connection.protocolVersion === 5
            ? { cmd: 'connack', reasonCode: code, sessionPresent, ...(properties ? { properties } : {}) }
            : { cmd: 'connack', returnCode: code, sessionPresent },
        );
        if (code !== 0) socket.end();
      } else if (packet.cmd === 'publish') {
        const length = packet.length ?? 0;
        const bytes = 1 + (length < 128 ? 1 : length < 16_384 ? 2 : length < 2_097_152 ? 3 : 4) + length;
        this.publishes.push({ packet, bytes, connection: number });
        if (packet.qos !== 1) return;
        const code = this.options.puback?.(packet, this.publishes.length - 1) ?? 0;
        if (code !== 'never') send({ cmd: 'puback', messageId: packet.messageId, reasonCode: code } as Packet);
      } else if (packet.cmd === 'subscribe') {
        const codes = packet.subscriptions.map((s) => {
          this.subscriptions.push(s.topic);
          return this.options.suback?.(s.topic) ?? 1;
        });
        if (codes.includes('never')) return;
        send({ cmd: 'suback', messageId: packet.messageId, granted: codes as number[] });
      } else if (packet.cmd === 'puback') {
        this.pubacks.push({ messageId: packet.messageId ?? -1, connection: number });
      } else if (packet.cmd === 'unsubscribe') {
        send({ cmd: 'unsuback', messageId: packet.messageId, granted: packet.unsubscriptions.map(() => 0) } as Packet);
      } else if (packet.cmd === 'pingreq') {
        send({ cmd: 'pingresp' });
      } else if (packet.cmd === 'disconnect') {
        this.disconnects++;
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
