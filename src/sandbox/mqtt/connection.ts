import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import {
  generate,
  parser as createParser,
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type IUnsubscribePacket,
  type Packet,
  type UserProperties,
} from 'mqtt-packet';
import type { SandboxBroker } from './broker';
import type { Delivery, Session, SessionLink, Subscription } from './session';
import { parseTopicFilter, type TopicFilter } from './topic-filter';

// The broker's side of one client: the MQTT packets it reads and writes, CONNECT's authentication,
// keepalive and the refusal of client publishes under `flespi/`. Sessions, routing and retained
// messages are the broker's (broker.ts); a connection asks it for them.

const PLATFORM_NAMESPACE = 'flespi/';
const CONNECT_TIMEOUT_MS = 10_000;
/** Above this many unsent bytes on a socket, QoS 0 messages to it are dropped. */
const VOLATILE_HIGH_WATER = 8 * 1024 * 1024;

// MQTT 5 reason codes used here.
const RC_SUCCESS = 0;
const RC_NO_SUBSCRIPTION_EXISTED = 0x11;
const RC_UNSPECIFIED = 0x80;
const RC_MALFORMED = 0x81;
const RC_PROTOCOL_ERROR = 0x82;
const RC_CLIENT_ID_INVALID = 0x85;
const RC_BAD_CREDENTIALS = 0x86;
const RC_NOT_AUTHORIZED = 0x87;
const RC_BANNED = 0x8a;
const RC_KEEP_ALIVE_TIMEOUT = 0x8d;
const RC_SESSION_TAKEN_OVER = 0x8e;
const RC_TOPIC_FILTER_INVALID = 0x8f;
const RC_TOPIC_NAME_INVALID = 0x90;
const RC_QUOTA_EXCEEDED = 0x97;
// MQTT 3.1.1 CONNACK return codes.
const V3_IDENTIFIER_REJECTED = 2;
const V3_NOT_AUTHORIZED = 5;

function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#');
}

/** One client's TCP connection: parses its packets and writes the broker's. */
export class Connection implements SessionLink {
  session?: Session;
  window = 1;
  private readonly parser = createParser();
  private readonly openedAt = Date.now();
  private lastSeen = this.openedAt;
  private keepaliveMs = 0;
  private protocolVersion: 3 | 4 | 5 = 4;
  private will?: IConnectPacket['will'];
  private corked = false;

  constructor(
    private readonly broker: SandboxBroker,
    readonly socket: net.Socket,
  ) {
    socket.on('error', () => {}); // resets and timeouts end in 'close', handled there
    socket.on('data', (data) => {
      this.lastSeen = Date.now();
      try {
        this.parser.parse(data);
      } catch {
        this.abort(RC_MALFORMED);
      }
    });
    // Whatever one client sends, a failure ends that client's connection, never the sandbox.
    this.parser.on('packet', (packet) => {
      try {
        this.handle(packet);
      } catch {
        this.abort(RC_UNSPECIFIED);
      }
    });
    this.parser.on('error', () => this.abort(RC_MALFORMED));
  }

  get isV5(): boolean {
    return this.protocolVersion === 5;
  }

  /**
   * Encodes each variant of a message (protocol, QoS, retain, subscription ids) once with mqtt-packet,
   * then copies it per subscriber and patches in the packet id and DUP flag: a platform message
   * fanned out to many subscribers is encoded once.
   */
  sendPublish(delivery: Delivery): void {
    const { message } = delivery;
    const ids = delivery.subscriptionIds;
    const v5 = this.isV5;
    const key = `${this.protocolVersion}${delivery.qos}${delivery.retain ? 1 : 0}${v5 && ids ? ids.join(',') : ''}`;
    const encodings = (message.encodings ??= new Map());
    let template = encodings.get(key);
    if (!template) {
      const packet: IPublishPacket = { cmd: 'publish', topic: message.topic, payload: message.payload, qos: delivery.qos, retain: delivery.retain, dup: false };
      if (delivery.qos > 0) packet.messageId = 1;
      if (v5 && (message.userProperties || ids)) {
        packet.properties = {};
        if (message.userProperties) packet.properties.userProperties = message.userProperties;
        if (ids) packet.properties.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids;
      }
      template = generate(packet, { protocolVersion: this.protocolVersion });
      encodings.set(key, template);
    }
    if (delivery.qos === 0) return this.writeRaw(template);
    const bytes = Buffer.allocUnsafe(template.length);
    template.copy(bytes);
    if (delivery.dup) bytes[0] |= 0x08;
    // The packet id follows the fixed header (1 byte + 1..4 length bytes) and the topic (2 + n bytes).
    let offset = 1;
    while (bytes[offset] & 0x80) offset++;
    offset += 3 + bytes.readUInt16BE(offset + 1);
    bytes.writeUInt16BE(delivery.messageId, offset);
    this.writeRaw(bytes);
  }

  acceptsVolatile(): boolean {
    return this.socket.writableLength < VOLATILE_HIGH_WATER;
  }

  /** Another connection claimed this client id: tell the client (MQTT 5) and close. */
  takeOver(): void {
    this.session = undefined;
    this.will = undefined;
    if (this.isV5) this.write({ cmd: 'disconnect', reasonCode: RC_SESSION_TAKEN_OVER });
    this.socket.end();
    this.socket.destroySoon();
  }

  /** The session overflowed: say so (MQTT 5 DISCONNECT 0x97) and close; the session stays. */
  overflow(): void {
    if (!this.socket.writableEnded) this.abort(RC_QUOTA_EXCEEDED);
  }

  /** The socket closed: publish the will unless the client said goodbye, and detach from the session. */
  closed(): void {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    this.broker.detach(session);
    if (this.will)
      this.publishFromClient(
        this.will.topic,
        Buffer.from(this.will.payload),
        this.will.qos ?? 0,
        this.will.retain ?? false,
        this.will.properties?.userProperties,
        undefined,
      );
  }

  checkTimeouts(now: number): void {
    if (!this.session) {
      if (now - this.openedAt > CONNECT_TIMEOUT_MS) this.socket.destroy();
      return;
    }
    // MQTT: the server disconnects a client silent for one and a half keepalive periods.
    if (this.keepaliveMs > 0 && now - this.lastSeen > this.keepaliveMs * 1.5) this.abort(RC_KEEP_ALIVE_TIMEOUT);
  }

  private write(packet: Packet): void {
    this.writeRaw(generate(packet, { protocolVersion: this.protocolVersion }));
  }

  private writeRaw(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      // Packets written in one tick leave in one syscall.
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  /** Closes after a protocol violation, saying why to MQTT 5 clients. */
  private abort(reasonCode: number): void {
    if (this.isV5 && this.session) this.write({ cmd: 'disconnect', reasonCode });
    this.socket.end();
    this.socket.destroySoon();
  }

  private handle(packet: Packet): void {
    if (this.socket.destroyed) return;
    const session = this.session;
    if (!session) {
      if (packet.cmd === 'connect') this.handleConnect(packet);
      else this.socket.destroy();
      return;
    }
    switch (packet.cmd) {
      case 'publish':
        return this.handlePublish(packet, session);
      case 'puback':
        return session.acknowledge(packet.messageId!);
      case 'pubrel':
        return this.write({ cmd: 'pubcomp', messageId: packet.messageId });
      case 'subscribe':
        return this.handleSubscribe(packet, session);
      case 'unsubscribe':
        return this.handleUnsubscribe(packet, session);
      case 'pingreq':
        return this.write({ cmd: 'pingresp' });
      case 'disconnect':
        // A normal disconnect drops the will; MQTT 5 may also change the session expiry here.
        if (packet.reasonCode !== 0x04) this.will = undefined;
        if (this.isV5 && packet.properties?.sessionExpiryInterval !== undefined && session.expirySeconds) {
          session.expirySeconds = packet.properties.sessionExpiryInterval;
          session.persistent = session.expirySeconds > 0;
        }
        this.socket.end();
        return;
      case 'pubrec': // the broker never sends QoS 2
      case 'pubcomp':
        return;
      default:
        // A second CONNECT, AUTH (no enhanced auth here) or a server-only packet.
        return this.abort(RC_PROTOCOL_ERROR);
    }
  }

  private handleConnect(packet: IConnectPacket): void {
    this.protocolVersion = packet.protocolVersion === 5 ? 5 : packet.protocolVersion === 3 ? 3 : 4;
    const refuse = (v5Code: number, v3Code: number) => {
      this.write(this.isV5 ? { cmd: 'connack', reasonCode: v5Code, sessionPresent: false } : { cmd: 'connack', returnCode: v3Code, sessionPresent: false });
      this.socket.end();
      this.socket.destroySoon();
    };
    const verdict = this.broker.options.authenticate(packet.username, packet.password);
    if (verdict === 'blocked') return refuse(RC_BANNED, V3_NOT_AUTHORIZED);
    // MQTT 5: 134 "bad user name or password" for a wrong token, 135 "not authorized" when none was given.
    // MQTT 3.1.1: 2 "identifier rejected", which flespi's own clients (flespi-io-js, Toolbox) take for
    // a bad token; see docs/flespi-assumptions.md.
    if (verdict !== 'ok') return refuse(packet.username || packet.password ? RC_BAD_CREDENTIALS : RC_NOT_AUTHORIZED, V3_IDENTIFIER_REJECTED);

    let clientId = packet.clientId;
    let assigned: string | undefined;
    if (clientId === '') {
      if (!this.isV5 && !packet.clean) return refuse(RC_CLIENT_ID_INVALID, V3_IDENTIFIER_REJECTED);
      clientId = assigned = `sandbox-${randomBytes(8).toString('hex')}`;
    }
    const expiry = packet.properties?.sessionExpiryInterval ?? 0;
    const { session, present } = this.broker.openSession(clientId, packet.clean !== false);
    session.persistent = this.isV5 ? expiry > 0 : packet.clean === false;
    session.expirySeconds = this.isV5 ? expiry : undefined;

    this.session = session;
    this.will = packet.will;
    this.keepaliveMs = (packet.keepalive ?? 0) * 1000;
    const receiveMaximum = this.isV5 ? (packet.properties?.receiveMaximum ?? 0xffff) : 0xffff;
    this.window = Math.min(receiveMaximum, this.broker.maxInflight);
    if (this.isV5) {
      this.write({
        cmd: 'connack',
        reasonCode: RC_SUCCESS,
        sessionPresent: present,
        properties: {
          maximumQoS: 1,
          retainAvailable: true,
          wildcardSubscriptionAvailable: true,
          subscriptionIdentifiersAvailable: true,
          sharedSubscriptionAvailable: true,
          ...(assigned ? { assignedClientIdentifier: assigned } : {}),
        },
      });
    } else {
      this.write({ cmd: 'connack', returnCode: 0, sessionPresent: present });
    }
    this.broker.attach(session, this);
  }

  private handlePublish(packet: IPublishPacket, session: Session): void {
    const topic = packet.topic;
    if (!isValidTopicName(topic)) return this.abort(RC_TOPIC_NAME_INVALID);
    const refused = topic.startsWith(PLATFORM_NAMESPACE);
    const reasonCode = refused && this.isV5 ? RC_NOT_AUTHORIZED : RC_SUCCESS;
    if (!refused) {
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      this.publishFromClient(topic, payload, packet.qos, packet.retain, packet.properties?.userProperties, session);
    }
    if (packet.qos === 1) this.write(this.isV5 ? { cmd: 'puback', messageId: packet.messageId, reasonCode } : { cmd: 'puback', messageId: packet.messageId });
    // QoS 2 from a client: the message was delivered once above; PUBREL is answered with PUBCOMP.
    else if (packet.qos === 2)
      this.write(this.isV5 ? { cmd: 'pubrec', messageId: packet.messageId, reasonCode } : { cmd: 'pubrec', messageId: packet.messageId });
  }

  private publishFromClient(
    topic: string,
    payload: Buffer,
    qos: number,
    retain: boolean,
    userProperties: UserProperties | undefined,
    origin: Session | undefined,
  ): void {
    if (!isValidTopicName(topic) || topic.startsWith(PLATFORM_NAMESPACE)) return;
    this.broker.dispatch({ topic, levels: topic.split('/'), payload, qos: qos > 0 ? 1 : 0, retain, userProperties, origin });
  }

  private handleSubscribe(packet: ISubscribePacket, session: Session): void {
    const subscriptionId = this.isV5 ? packet.properties?.subscriptionIdentifier : undefined;
    const granted: number[] = [];
    const retainedFor: Subscription[] = [];
    const refusals: string[] = [];
    for (const request of packet.subscriptions) {
      let filter: TopicFilter;
      try {
        filter = parseTopicFilter(request.topic);
      } catch (error) {
        granted.push(this.isV5 ? RC_TOPIC_FILTER_INVALID : RC_UNSPECIFIED);
        refusals.push(error instanceof Error ? error.message : String(error));
        continue;
      }
      const qos = request.qos >= 1 ? 1 : 0;
      const existed = this.broker.subscribe(session, filter, {
        qos,
        subscriptionId,
        noLocal: this.isV5 && request.nl === true,
        retainAsPublished: this.isV5 && request.rap === true,
      });
      granted.push(qos);
      // Shared subscriptions never get retained messages; MQTT 5 retain handling: 1 = only when new, 2 = never.
      const retainHandling = this.isV5 ? (request.rh ?? 0) : 0;
      if (filter.shareGroup === undefined && (retainHandling === 0 || (retainHandling === 1 && !existed)))
        retainedFor.push(session.subscriptions.get(filter.raw)!);
    }
    // MQTT 5 can say why (SUBACK Reason String); the filter's own text is left out, it may be huge.
    const reasonString = this.isV5 && refusals.length > 0 ? refusals.join('; ').slice(0, 1000) : undefined;
    this.write({ cmd: 'suback', messageId: packet.messageId, granted, ...(reasonString ? { properties: { reasonString } } : {}) });
    for (const subscription of retainedFor) this.broker.deliverRetained(session, subscription);
  }

  private handleUnsubscribe(packet: IUnsubscribePacket, session: Session): void {
    const codes = packet.unsubscriptions.map((raw) => (this.broker.unsubscribe(session, raw) ? RC_SUCCESS : RC_NO_SUBSCRIPTION_EXISTED));
    this.write(this.isV5 ? { cmd: 'unsuback', messageId: packet.messageId, granted: codes } : { cmd: 'unsuback', messageId: packet.messageId, granted: [] });
  }
}
