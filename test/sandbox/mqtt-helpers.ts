import net from 'node:net';
import { once } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { generate, parser as createParser, type IPublishPacket, type Packet } from 'mqtt-packet';
import { SandboxBroker, type BrokerOptions } from '../../src/sandbox/mqtt/broker';

export const TOKEN = 'T'.repeat(64);
export const BLOCKED_TOKEN = 'B'.repeat(64);

/** Accepts the token bare or prefixed in the username, or in the password, like flespi. */
export function flespiLikeAuth(username: string | undefined, password: Buffer | undefined): 'ok' | 'bad-credentials' | 'blocked' {
  const candidates = [username?.replace(/^FlespiToken\s+/i, ''), password?.toString()];
  if (candidates.includes(BLOCKED_TOKEN)) return 'blocked';
  return candidates.includes(TOKEN) ? 'ok' : 'bad-credentials';
}

export async function startBroker(options: Partial<BrokerOptions> = {}): Promise<{ broker: SandboxBroker; url: string; port: number }> {
  const broker = new SandboxBroker({ authenticate: flespiLikeAuth, ...options });
  const port = await broker.listen(0, '127.0.0.1');
  return { broker, url: `mqtt://127.0.0.1:${port}`, port };
}

/** Connects an MQTT.js client that does not reconnect by itself (tests decide when to reconnect). */
export function connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { username: TOKEN, reconnectPeriod: 0, connectTimeout: 5000, ...options });
}

/** Connects and collects messages from the first one on (a persistent session's queue arrives right after CONNACK). */
export async function connectCollecting(
  url: string,
  options: IClientOptions = {},
): Promise<{ client: MqttClient; received: Received[]; sessionPresent: boolean }> {
  const client = mqtt.connect(url, { username: TOKEN, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  const received = collect(client);
  const sessionPresent = await new Promise<boolean>((resolve, reject) => {
    client.once('connect', (connack) => resolve(connack.sessionPresent));
    client.once('error', reject);
  });
  return { client, received, sessionPresent };
}

export interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Collects every message a client receives. */
export function collect(client: MqttClient): Received[] {
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => received.push({ topic, payload: payload.toString(), packet }));
  return received;
}

/** Resolves once `predicate` holds, checking after every message the client receives. */
export function until(client: MqttClient, predicate: () => boolean): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!predicate()) return;
      client.off('message', check);
      resolve();
    };
    client.on('message', check);
  });
}

/** Resolves on the next tick after `predicate` holds, polling (for broker-side state). */
export async function eventually(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 10));
}

/**
 * A bare MQTT client on mqtt-packet, for what MQTT.js hides: never acknowledging, DUP flags,
 * silence past the keepalive.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  private waiters: (() => void)[] = [];

  private constructor(
    readonly socket: net.Socket,
    private readonly protocolVersion: 4 | 5,
  ) {
    const parser = createParser({ protocolVersion });
    parser.on('packet', (packet) => {
      this.packets.push(packet);
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on('data', (data) => parser.parse(data));
    socket.on('error', () => {});
  }

  static async connect(
    port: number,
    options: { clientId: string; protocolVersion?: 4 | 5; clean?: boolean; keepalive?: number; sessionExpiryInterval?: number },
  ): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const protocolVersion = options.protocolVersion ?? 4;
    const client = new RawClient(socket, protocolVersion);
    client.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion,
      clientId: options.clientId,
      clean: options.clean ?? true,
      keepalive: options.keepalive ?? 0,
      username: TOKEN,
      properties: options.sessionExpiryInterval ? { sessionExpiryInterval: options.sessionExpiryInterval } : undefined,
    });
    await client.waitFor((packets) => packets.some((p) => p.cmd === 'connack'));
    return client;
  }

  send(packet: Packet): void {
    this.socket.write(generate(packet, { protocolVersion: this.protocolVersion }));
  }

  publishes(): IPublishPacket[] {
    return this.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
  }

  async subscribe(topic: string, qos: 0 | 1 = 1): Promise<void> {
    this.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
    await this.waitFor((packets) => packets.some((p) => p.cmd === 'suback'));
  }

  waitFor(predicate: (packets: Packet[]) => boolean): Promise<void> {
    if (predicate(this.packets)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => (predicate(this.packets) ? resolve() : this.waiters.push(check));
      this.waiters.push(check);
    });
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.destroy();
    await once(this.socket, 'close');
  }
}

/** Ends clients forcibly (no DISCONNECT, so wills and sessions behave as after a crash) and waits for them. */
export async function endAll(...clients: MqttClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.endAsync(true)));
}
