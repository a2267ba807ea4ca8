import { randomBytes } from 'node:crypto';
import net from 'node:net';
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
import { Session, SharedGroup, Subscription, type BrokerMessage, type Delivery, type SessionLimits, type SessionLink, type SubscriptionOptions } from './session';
import { filterMatches, parseTopicFilter, TopicTrie, type TopicFilter } from './topic-filter';

/**
 * The sandbox's MQTT broker: MQTT 3.1.1 and 5 over TCP, QoS 0/1 (QoS 2 subscriptions are granted
 * QoS 1), retained messages, persistent sessions, and flespi's topic filter extensions (`$share`
 * and sticky `$share/{name}:{count}/`, `$filter/payload=`, `$filter/cid=`, comma lists; see
 * topic-filter.ts).
 *
 * Like flespi, it refuses client publishes under `flespi/` (only the platform publishes there):
 * they are discarded, and a QoS 1 publish is answered with PUBACK 135 "not authorized" (MQTT 5)
 * or a plain PUBACK (3.1.1, which has no way to say no).
 */

export interface BrokerOptions {
  /** Accepts or refuses a CONNECT. `username` may be the bare token or "FlespiToken <token>"; the token may also be in the password. */
  authenticate(username: string | undefined, password: Buffer | undefined): 'ok' | 'bad-credentials' | 'blocked';
  /** The account id: the `cid` of messages that carry none (client publishes), for `$filter/cid=`. */
  cid?: number;
  /** QoS 1 messages a client may have unacknowledged at once (MQTT 5 clients may ask for fewer with Receive Maximum). Default 10,000. */
  maxInflight?: number;
  /**
   * QoS 1 messages a session may hold beyond the in-flight ones before it overflows (see
   * `maxSessionBytes`); also the bound of a shared group's messages while no member is online (the
   * oldest dropped). Default 100,000.
   */
  maxQueued?: number;
  /**
   * Bytes (topic + payload) of unacknowledged QoS 1 messages a session may hold; past it the session
   * overflows as flespi's does: every message not yet acknowledged is dropped, and the client is
   * disconnected (MQTT 5 DISCONNECT 0x97 quota exceeded; MQTT 3.1.1 just closes). The session and its
   * subscriptions stay. An offline session that overflows is discarded (its next CONNACK says
   * session-present 0). Default 1 GiB (flespi's limit).
   */
  maxSessionBytes?: number;
}

export interface PublishOptions {
  retain?: boolean;
  /** MQTT 5 user properties (flespi sets `timestamp`, `cid`). Ignored for MQTT 3.1.1 clients. */
  userProperties?: Record<string, string>;
}

/** One session, for the control API and tests. */
export interface SessionInfo {
  clientId: string;
  connected: boolean;
  persistent: boolean;
  subscriptions: string[];
  queued: number;
  inflight: number;
  dropped: number;
  /** Times the session overflowed (see BrokerOptions.maxSessionBytes). */
  overflows: number;
}

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

type RouteTarget = Subscription | SharedGroup;

export class SandboxBroker {
  private readonly server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  private readonly connections = new Set<Connection>();
  private readonly sessions = new Map<string, Session>();
  private readonly groups = new Map<string, SharedGroup>();
  private readonly routes = new TopicTrie<RouteTarget>();
  private readonly retained = new Map<string, BrokerMessage>();
  private readonly sweepTimer: NodeJS.Timeout;
  private closing = false;
  readonly maxInflight: number;
  readonly maxQueued: number;
  private readonly sessionLimits: SessionLimits;

  constructor(readonly options: BrokerOptions) {
    this.maxInflight = Math.min(Math.max(options.maxInflight ?? 10_000, 1), 0xffff);
    this.maxQueued = Math.max(options.maxQueued ?? 100_000, 1);
    this.sessionLimits = {
      maxQueued: this.maxQueued,
      maxBytes: Math.max(options.maxSessionBytes ?? 2 ** 30, 1),
      // Later, not inside the delivery that overflowed (a dispatch may be walking this session's subscriptions).
      onOverflow: (session) => queueMicrotask(() => this.overflowed(session)),
    };
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
  }

  /** Starts listening; resolves with the bound port (pass 0 for a random one). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Publishes as the platform (QoS 1 to QoS 1 subscribers). Retained with an empty payload clears the retained message. */
  publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): void {
    this.dispatch({
      topic,
      levels: topic.split('/'),
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos: 1,
      retain: options.retain === true,
      userProperties: options.userProperties,
    });
  }

  /** Fault injection: closes every client connection abruptly (persistent sessions survive). */
  dropClients(): void {
    for (const connection of this.connections) connection.socket.destroy();
  }

  /** Number of connected clients, for the control API. */
  get clientCount(): number {
    let count = 0;
    for (const connection of this.connections) if (connection.session) count++;
    return count;
  }

  /** Every session, connected or kept for a persistent client. */
  sessionInfo(): SessionInfo[] {
    return [...this.sessions.values()].map((session) => ({
      clientId: session.clientId,
      connected: session.link !== undefined,
      persistent: session.persistent,
      subscriptions: [...session.subscriptions.keys()],
      queued: session.queue.length,
      inflight: session.inflight.size,
      dropped: session.droppedMessages,
      overflows: session.overflows,
    }));
  }

  get retainedCount(): number {
    return this.retained.size;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweepTimer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.socket.destroy();
    for (const session of this.sessions.values()) if (session.expiryTimer) clearTimeout(session.expiryTimer);
    this.sessions.clear();
    this.groups.clear();
    this.retained.clear();
    if (this.server.listening) await closed;
  }

  // ---- routing

  /** Stores a retained message and delivers a message to every matching subscription. */
  dispatch(message: BrokerMessage): void {
    if (message.retain) {
      if (message.payload.length === 0) this.retained.delete(message.topic);
      else this.retained.set(message.topic, message);
    }
    const targets: RouteTarget[] = [];
    this.routes.match(message.levels, targets);
    if (targets.length === 0) return;
    let json: LazyJson | undefined;
    let direct: Map<Session, Delivery> | undefined;
    for (const target of targets) {
      if (target.filter.cid !== undefined && this.cidOf(message) !== target.filter.cid) continue;
      if (target.filter.payloadFilter) {
        const object = (json ??= new LazyJson(message.payload)).value();
        if (!object || !passes(target.filter.payloadFilter, object)) continue;
      }
      if (target instanceof SharedGroup) {
        target.route(message);
        continue;
      }
      const { session, options } = target;
      if (options.noLocal && message.origin === session) continue;
      direct ??= new Map();
      const qos = Math.min(options.qos, message.qos) as 0 | 1;
      const existing = direct.get(session);
      if (existing) {
        // Overlapping subscriptions of one session: one delivery, the highest QoS, every identifier.
        existing.qos = Math.max(existing.qos, qos) as 0 | 1;
        if (options.subscriptionId !== undefined) (existing.subscriptionIds ??= []).push(options.subscriptionId);
        continue;
      }
      direct.set(session, {
        message,
        qos,
        retain: options.retainAsPublished && message.retain,
        subscriptionIds: options.subscriptionId === undefined ? undefined : [options.subscriptionId],
        dup: false,
        messageId: 0,
      });
    }
    if (direct) for (const [session, delivery] of direct) session.deliver(delivery);
  }

  /** Adds or updates a subscription; returns whether it existed before. */
  subscribe(session: Session, filter: TopicFilter, options: SubscriptionOptions): boolean {
    const existing = session.subscriptions.get(filter.raw);
    if (existing) {
      existing.options = options;
      return true;
    }
    let subscription: Subscription;
    if (filter.shareGroup !== undefined) {
      const key = `${filter.shareGroup}\u0000${filter.unshared}`;
      let group = this.groups.get(key);
      if (!group) {
        group = new SharedGroup(key, filter, this.maxQueued);
        this.groups.set(key, group);
        for (const pattern of filter.patterns) this.routes.add(pattern, group);
      }
      subscription = new Subscription(session, filter, options, group);
      group.members.push(subscription);
      group.drain();
    } else {
      subscription = new Subscription(session, filter, options);
      for (const pattern of filter.patterns) this.routes.add(pattern, subscription);
    }
    session.subscriptions.set(filter.raw, subscription);
    return false;
  }

  unsubscribe(session: Session, raw: string): boolean {
    const subscription = session.subscriptions.get(raw);
    if (!subscription) return false;
    session.subscriptions.delete(raw);
    const group = subscription.group;
    if (!group) {
      for (const pattern of subscription.filter.patterns) this.routes.remove(pattern, subscription);
      return true;
    }
    group.members.splice(group.members.indexOf(subscription), 1);
    if (group.members.length === 0) {
      this.groups.delete(group.key);
      for (const pattern of group.filter.patterns) this.routes.remove(pattern, group);
    }
    return true;
  }

  /** Sends the retained messages matching a new subscription. */
  deliverRetained(session: Session, subscription: Subscription): void {
    const { filter, options } = subscription;
    for (const message of this.retained.values()) {
      if (!filterMatches(filter, message.levels)) continue;
      if (filter.cid !== undefined && this.cidOf(message) !== filter.cid) continue;
      if (filter.payloadFilter) {
        const object = new LazyJson(message.payload).value();
        if (!object || !passes(filter.payloadFilter, object)) continue;
      }
      session.deliver({
        message,
        qos: Math.min(options.qos, message.qos) as 0 | 1,
        retain: true,
        subscriptionIds: options.subscriptionId === undefined ? undefined : [options.subscriptionId],
        dup: false,
        messageId: 0,
      });
    }
  }

  /** The account a message belongs to: its `cid` user property (the platform's messages), else this broker's account. */
  private cidOf(message: BrokerMessage): string | undefined {
    const cid = message.userProperties?.cid;
    if (typeof cid === 'string') return cid;
    if (Array.isArray(cid)) return cid[0];
    return this.options.cid === undefined ? undefined : String(this.options.cid);
  }

  // ---- sessions

  /** Finds or creates the session for a CONNECT, taking it over from an older connection. */
  openSession(clientId: string, cleanStart: boolean): { session: Session; present: boolean } {
    const previous = this.sessions.get(clientId);
    if (previous?.link) {
      (previous.link as Connection).takeOver();
      this.detach(previous); // ends it unless it is persistent
    }
    let session = this.sessions.get(clientId);
    if (session && cleanStart) {
      this.endSession(session);
      session = undefined;
    }
    if (session) return { session, present: true };
    session = new Session(clientId, this.sessionLimits);
    this.sessions.set(clientId, session);
    return { session, present: false };
  }

  /** The session's client went away: hand its shared-subscription messages to other members, then keep or end the session. */
  detach(session: Session): void {
    session.link = undefined;
    if (this.closing) return;
    if (!session.persistent) {
      this.endSession(session);
      return;
    }
    for (const delivery of session.takeGroupDeliveries()) delivery.group!.route(delivery.message, true);
    if (session.expirySeconds !== undefined && session.expirySeconds < 0xffffffff) {
      session.expiryTimer = setTimeout(() => {
        if (!session.link && this.sessions.get(session.clientId) === session) this.endSession(session);
      }, Math.min(session.expirySeconds * 1000, 0x7fffffff));
      session.expiryTimer.unref();
    }
  }

  /** A client connected to a session: resend and flush its messages, and let its shared groups hand it waiting ones. */
  attach(session: Session, link: SessionLink): void {
    session.attach(link);
    for (const subscription of session.subscriptions.values()) subscription.group?.drain();
  }

  /** A session overflowed (its undelivered messages are gone): disconnect its client, or discard it when offline. */
  private overflowed(session: Session): void {
    if (this.closing || this.sessions.get(session.clientId) !== session) return;
    if (session.link) (session.link as Connection).overflow();
    else this.endSession(session);
  }

  private endSession(session: Session): void {
    const orphans = session.takeGroupDeliveries();
    for (const raw of [...session.subscriptions.keys()]) this.unsubscribe(session, raw);
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    for (const delivery of orphans) if (this.groups.get(delivery.group!.key) === delivery.group) delivery.group!.route(delivery.message, true);
  }

  // ---- connections

  private accept(socket: net.Socket): void {
    const connection = new Connection(this, socket);
    this.connections.add(connection);
    socket.on('close', () => {
      this.connections.delete(connection);
      connection.closed();
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const connection of this.connections) connection.checkTimeouts(now);
  }
}

/** Parses a payload as a JSON object at most once, for `$filter/payload=` subscriptions. */
class LazyJson {
  private parsed?: Record<string, unknown> | null;
  constructor(private readonly payload: Buffer) {}

  value(): Record<string, unknown> | null {
    if (this.parsed === undefined) {
      try {
        const value: unknown = JSON.parse(this.payload.toString('utf8'));
        this.parsed = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
      } catch {
        this.parsed = null;
      }
    }
    return this.parsed;
  }
}

/**
 * Whether a message passes a subscription's `$filter/payload=`. A filter that throws while evaluating
 * (it should not: filter.ts bounds its depth) does not match, rather than failing the delivery of the
 * message to everyone else or, from a timer, the whole sandbox.
 */
function passes(filter: (message: Readonly<Record<string, unknown>>) => boolean, message: Record<string, unknown>): boolean {
  try {
    return filter(message);
  } catch {
    return false;
  }
}

function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#');
}

/** One client's TCP connection: parses its packets and writes the broker's. */
class Connection implements SessionLink {
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
    if (this.will) this.publishFromClient(this.will.topic, Buffer.from(this.will.payload), this.will.qos ?? 0, this.will.retain ?? false, this.will.properties?.userProperties, undefined);
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
    else if (packet.qos === 2) this.write(this.isV5 ? { cmd: 'pubrec', messageId: packet.messageId, reasonCode } : { cmd: 'pubrec', messageId: packet.messageId });
  }

  private publishFromClient(topic: string, payload: Buffer, qos: number, retain: boolean, userProperties: UserProperties | undefined, origin: Session | undefined): void {
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
      if (filter.shareGroup === undefined && (retainHandling === 0 || (retainHandling === 1 && !existed))) retainedFor.push(session.subscriptions.get(filter.raw)!);
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
