import type { UserProperties } from 'mqtt-packet';
import { Deque } from './deque';
import { fnv1a, type TopicFilter } from './topic-filter';

/** A message as published once; deliveries to each session share it. */
export interface BrokerMessage {
  readonly topic: string;
  readonly levels: readonly string[];
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  readonly retain: boolean;
  readonly userProperties?: UserProperties;
  /** The session that published it (for MQTT 5 no-local); undefined for the platform. */
  readonly origin?: Session;
  /** Encoded PUBLISH packets by variant, reused for every subscriber (see Connection.sendPublish). */
  encodings?: Map<string, Buffer>;
}

/** One message on its way to one session. */
export interface Delivery {
  readonly message: BrokerMessage;
  qos: 0 | 1;
  readonly retain: boolean;
  subscriptionIds?: number[];
  /** Set when the message came through a shared subscription: it may move to another member. */
  readonly group?: SharedGroup;
  dup: boolean;
  messageId: number;
}

/** Where a session's packets go while its client is connected. */
export interface SessionLink {
  /** QoS 1 messages that may be awaiting PUBACK at once. */
  readonly window: number;
  sendPublish(delivery: Delivery): void;
  /** False while the socket's send buffer is full: QoS 0 messages are then dropped. */
  acceptsVolatile(): boolean;
}

export interface SubscriptionOptions {
  qos: 0 | 1;
  subscriptionId?: number;
  noLocal: boolean;
  retainAsPublished: boolean;
}

export class Subscription {
  constructor(
    readonly session: Session,
    readonly filter: TopicFilter,
    public options: SubscriptionOptions,
    readonly group?: SharedGroup,
  ) {}
}

/**
 * The members of one `$share/{group}/{filter}`: each message goes to one connected member, in turn.
 * A sticky group (`$share/{name}:{count}/`, `$share/{name}:{from}:{count}/`) sends every message
 * whose topic has the same values in those levels to the same connected member, by rendezvous
 * hashing: a member joining takes over only some topics, and a member leaving hands over only its
 * own, which is how flespi describes its sticky subscriptions (blog, 13 March 2019).
 * When no member is connected but one has a persistent session, QoS 1 messages wait here (bounded).
 */
export class SharedGroup {
  readonly members: Subscription[] = [];
  readonly pending = new Deque<BrokerMessage>();
  droppedMessages = 0;
  private cursor = 0;

  constructor(
    readonly key: string,
    readonly filter: TopicFilter,
    private readonly maxPending: number,
  ) {}

  route(message: BrokerMessage, dup = false): void {
    const member = this.filter.sticky ? this.stickyMember(message.levels) : this.nextConnectedMember();
    if (member) {
      const { qos, subscriptionId } = member.options;
      member.session.deliver({
        message,
        qos: Math.min(qos, message.qos) as 0 | 1,
        retain: false,
        subscriptionIds: subscriptionId === undefined ? undefined : [subscriptionId],
        group: this,
        dup,
        messageId: 0,
      });
      return;
    }
    if (message.qos === 0 || !this.members.some((m) => m.session.persistent && m.options.qos === 1)) return;
    if (this.pending.length >= this.maxPending) {
      this.pending.shift();
      this.droppedMessages++;
    }
    this.pending.push(message);
  }

  /** Hands waiting messages to connected members (after one connected or subscribed). */
  drain(): void {
    while (this.pending.length > 0 && this.hasConnectedMember()) this.route(this.pending.shift()!);
  }

  private hasConnectedMember(): boolean {
    return this.members.some((m) => m.session.link !== undefined);
  }

  /** The connected member with the highest weight for this topic's sticky levels. */
  private stickyMember(levels: readonly string[]): Subscription | undefined {
    const { from, count } = this.filter.sticky!;
    const key = levels.slice(from, from + count).join('/');
    let best: Subscription | undefined;
    let bestWeight = -1;
    for (const member of this.members) {
      if (!member.session.link) continue;
      const weight = mix32(fnv1a(`${key}\u0000${member.session.clientId}`));
      if (weight > bestWeight) {
        best = member;
        bestWeight = weight;
      }
    }
    return best;
  }

  private nextConnectedMember(): Subscription | undefined {
    const count = this.members.length;
    for (let step = 0; step < count; step++) {
      const index = (this.cursor + step) % count;
      const member = this.members[index];
      if (member.session.link) {
        this.cursor = (index + 1) % count;
        return member;
      }
    }
    return undefined;
  }
}

/** How much a session may hold, and what the broker does when it holds more. */
export interface SessionLimits {
  /** QoS 1 messages waiting beyond the in-flight ones. */
  readonly maxQueued: number;
  /** Bytes (topic + payload) of every QoS 1 message not yet acknowledged, queued or in flight. */
  readonly maxBytes: number;
  /** The session overflowed: its undelivered messages were dropped; the broker disconnects or discards it. */
  onOverflow(session: Session): void;
}

/**
 * What the broker keeps per client id: subscriptions, QoS 1 messages waiting to be sent and messages
 * sent but not yet acknowledged (bounded by the link's window). Like flespi's (at most 1 GB of
 * unacknowledged messages per session, then "the connection will be disconnected and undelivered
 * messages will be deleted", forum changelog of the flespi MQTT broker), a session that holds more
 * than `maxBytes` (or `maxQueued` messages) overflows: every message not yet acknowledged is dropped
 * and `limits.onOverflow` is told.
 */
export class Session {
  readonly subscriptions = new Map<string, Subscription>();
  readonly queue = new Deque<Delivery>();
  readonly inflight = new Map<number, Delivery>();
  link?: SessionLink;
  /** Whether the session outlives its connection (3.1.1 clean=false; 5 session expiry > 0). */
  persistent = false;
  /** MQTT 5 session expiry in seconds (0xFFFFFFFF = never); undefined for 3.1.1 sessions (never). */
  expirySeconds?: number;
  expiryTimer?: NodeJS.Timeout;
  /** QoS 1 messages dropped because the session overflowed. */
  droppedMessages = 0;
  /** Times the session overflowed. */
  overflows = 0;
  /** Bytes of the QoS 1 messages not yet acknowledged (queued and in flight). */
  bytes = 0;
  private lastMessageId = 0;

  constructor(
    readonly clientId: string,
    private readonly limits: SessionLimits,
  ) {}

  deliver(delivery: Delivery): void {
    if (delivery.qos === 0) {
      if (this.link?.acceptsVolatile()) this.link.sendPublish(delivery);
      return;
    }
    this.queue.push(delivery);
    this.bytes += deliveryBytes(delivery);
    if (this.bytes > this.limits.maxBytes || this.queue.length > this.limits.maxQueued) return this.overflow();
    this.pump();
  }

  /** Drops every message not yet acknowledged and tells the broker. */
  private overflow(): void {
    this.droppedMessages += this.queue.length + this.inflight.size;
    this.overflows++;
    this.queue.retain(() => false);
    this.inflight.clear();
    this.bytes = 0;
    this.limits.onOverflow(this);
  }

  /** Sends queued messages while the in-flight window has room. */
  pump(): void {
    const link = this.link;
    if (!link) return;
    while (this.inflight.size < link.window && this.queue.length > 0) {
      const delivery = this.queue.shift()!;
      delivery.messageId = this.allocateMessageId();
      this.inflight.set(delivery.messageId, delivery);
      link.sendPublish(delivery);
    }
  }

  acknowledge(messageId: number): void {
    const delivery = this.inflight.get(messageId);
    if (!delivery) return;
    this.inflight.delete(messageId);
    this.bytes -= deliveryBytes(delivery);
    this.pump();
  }

  /** A client connected to this session: resend what it never acknowledged (DUP), then the queue. */
  attach(link: SessionLink): void {
    this.link = link;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    for (const delivery of this.inflight.values()) {
      delivery.dup = true;
      link.sendPublish(delivery);
    }
    this.pump();
  }

  /** Removes and returns the deliveries that came through shared subscriptions (in flight first), for another member to take. */
  takeGroupDeliveries(): Delivery[] {
    const taken: Delivery[] = [];
    for (const [messageId, delivery] of this.inflight) {
      if (delivery.group) {
        this.inflight.delete(messageId);
        taken.push(delivery);
      }
    }
    this.queue.retain((delivery) => {
      if (!delivery.group) return true;
      taken.push(delivery);
      return false;
    });
    for (const delivery of taken) this.bytes -= deliveryBytes(delivery);
    return taken;
  }

  private allocateMessageId(): number {
    do this.lastMessageId = this.lastMessageId === 0xffff ? 1 : this.lastMessageId + 1;
    while (this.inflight.has(this.lastMessageId));
    return this.lastMessageId;
  }
}

/** Spreads the bits of a 32-bit hash (MurmurHash3's finalizer), so rendezvous weights are uniform. */
function mix32(hash: number): number {
  let h = hash;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** What a QoS 1 message counts against its session's byte limit. */
function deliveryBytes(delivery: Delivery): number {
  return delivery.message.payload.length + delivery.message.topic.length;
}
