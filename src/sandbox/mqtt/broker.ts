import net from 'node:net';
import { Connection } from './connection';
import {
  Session,
  SharedGroup,
  Subscription,
  type BrokerMessage,
  type Delivery,
  type SessionLimits,
  type SessionLink,
  type SubscriptionOptions,
} from './session';
import { filterMatches, TopicTrie, type TopicFilter } from './topic-filter';

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
      session.expiryTimer = setTimeout(
        () => {
          if (!session.link && this.sessions.get(session.clientId) === session) this.endSession(session);
        },
        Math.min(session.expirySeconds * 1000, 0x7fffffff),
      );
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
