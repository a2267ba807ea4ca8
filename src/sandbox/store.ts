import type { FlespiMessage } from '../core/message';
import { PROTOCOLS, SANDBOX_CID, defaultStreams, protocolByName, protocolItem, type ProtocolInfo } from './catalog';
import { ChannelLog, DeviceLog, type StoredMessage } from './log';
import { microseconds } from './random';

/** Bad input to the sandbox (a message without ident, an unknown channel...): the REST side answers 400/404 with its text. */
export class SandboxInputError extends Error {
  override readonly name = 'SandboxInputError';
  constructor(
    message: string,
    readonly status: 400 | 404 = 400,
  ) {
    super(message);
  }
}

export interface ChannelSpec {
  id: number;
  name: string;
  /** A protocol name of the catalog: teltonika, wialon_ips, queclink. */
  protocol?: string;
}

export interface DeviceSpec {
  id: number;
  name: string;
  ident: string;
  protocol: string;
}

export interface SandboxChannel {
  readonly id: number;
  readonly protocol: ProtocolInfo;
  readonly item: Record<string, unknown>;
  readonly log: ChannelLog;
  /** `server.timestamp` of the newest stamp, so stamps never go backwards. */
  lastStamp: number;
  /** Messages the channel refused while its buffer was full (blocked). */
  refused: number;
}

/**
 * flespi's block code the sandbox shows in a channel's `blocked` while its buffer is full. The 2018
 * swagger lists 4 as "too much storage used"; which code flespi shows for a buffer overflow is not
 * documented (our assumption).
 */
export const BUFFER_FULL_BLOCK_CODE = 4;

/** The channel buffer of flespi's free plan: 100 MB (https://flespi.com/kb/channel-entry-point-to-gateway). */
export const DEFAULT_CHANNEL_BUFFER_BYTES = 100 * 1024 * 1024;

export interface SandboxDevice {
  readonly id: number;
  readonly ident: string;
  readonly item: Record<string, unknown>;
  readonly log: DeviceLog;
}

export interface StoreOptions {
  /** Messages kept per channel and per device. A full channel blocks (takes no more); a full device log drops its oldest. */
  capacity?: number;
  /** A channel buffer's size limit in bytes of message JSON (default 100 MB, flespi's free plan); a full channel blocks. */
  channelBufferBytes?: number;
  /** flespi's clock minus the real one, in ms: `server.timestamp` stamps and the REST `Date` header are shifted by it. */
  clockOffsetMs?: number;
  /** Channel `messages_ttl` in seconds. */
  channelMessagesTtl?: number;
  /** The key of the first message of every channel buffer (default 1). */
  firstKey?: number;
}

export type IngestListener = (channel: SandboxChannel, entries: readonly StoredMessage[]) => void;
/** Called when a channel becomes blocked (its buffer is full) or unblocked (room again). */
export type BlockListener = (channel: SandboxChannel) => void;

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const FORBIDDEN_IDENT = /[#+/\u0000-\u001f\u007f]/;

/** Channels, devices, streams and protocols of the sandbox, with the channel buffers and device message logs. */
export class SandboxStore {
  readonly cid = SANDBOX_CID;
  readonly channels = new Map<number, SandboxChannel>();
  readonly devices = new Map<number, SandboxDevice>();
  readonly streams: Record<string, unknown>[] = defaultStreams();
  readonly protocols: Record<string, unknown>[] = PROTOCOLS.map(protocolItem);
  private readonly deviceByIdent = new Map<string, SandboxDevice>();
  private readonly listeners = new Set<IngestListener>();
  private readonly blockListeners = new Set<BlockListener>();
  private readonly capacity: number;
  private readonly channelTtl: number;
  private readonly firstKey: number;
  private readonly bufferBytes: number;
  /** flespi's clock minus the real one (ms). */
  readonly clockOffsetMs: number;

  constructor(options: StoreOptions = {}) {
    this.capacity = options.capacity ?? 1_000_000;
    this.channelTtl = options.channelMessagesTtl ?? 86400;
    this.firstKey = options.firstKey ?? 1;
    this.bufferBytes = options.channelBufferBytes ?? DEFAULT_CHANNEL_BUFFER_BYTES;
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
  }

  /** The sandbox's flespi clock, ms since the epoch (the real clock plus `clockOffsetMs`). */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  addChannel(spec: ChannelSpec): SandboxChannel {
    const protocol = protocolByName(spec.protocol ?? 'teltonika');
    if (!protocol)
      throw new SandboxInputError(`unknown protocol "${spec.protocol}" for channel ${spec.id}: use one of ${PROTOCOLS.map((p) => p.name).join(', ')}`);
    if (!Number.isInteger(spec.id) || spec.id < 1) throw new SandboxInputError(`channel id ${spec.id} is invalid: use a positive integer`);
    if (this.channels.has(spec.id)) throw new SandboxInputError(`channel ${spec.id} exists already: give every channel its own id`);
    const item: Record<string, unknown> = {
      id: spec.id,
      name: spec.name,
      cid: this.cid,
      protocol_id: protocol.id,
      protocol_name: protocol.name,
      enabled: true,
      blocked: 0,
      uri: `ch${spec.id}.sandbox.flespi.gw:${20000 + (spec.id % 10000)}`,
      secondary_uri: '',
      messages_ttl: this.channelTtl,
      messages_size: 0,
      connections_count: 0,
      configuration: {},
      metadata: {},
    };
    const channel: SandboxChannel = {
      id: spec.id,
      protocol,
      item,
      log: new ChannelLog(this.capacity, this.channelTtl * 1000, this.firstKey, this.bufferBytes),
      lastStamp: 0,
      refused: 0,
    };
    this.channels.set(spec.id, channel);
    return channel;
  }

  addDevice(spec: DeviceSpec): SandboxDevice {
    const protocol = protocolByName(spec.protocol);
    if (!protocol) throw new SandboxInputError(`unknown protocol "${spec.protocol}" for device ${spec.id}`);
    if (this.devices.has(spec.id)) throw new SandboxInputError(`device ${spec.id} exists already: give every device its own id`);
    if (this.deviceByIdent.has(spec.ident)) throw new SandboxInputError(`ident ${spec.ident} belongs to another device already`);
    const ttl = 31_536_000;
    const item: Record<string, unknown> = {
      id: spec.id,
      name: spec.name,
      cid: this.cid,
      enabled: true,
      blocked: 0,
      connected: false,
      last_active: 0,
      device_type_id: protocol.deviceType.id,
      device_type_name: protocol.deviceType.name,
      protocol_id: protocol.id,
      protocol_name: protocol.name,
      configuration: { ident: spec.ident },
      messages_ttl: ttl,
      messages_rotate: 0,
      messages_size: 0,
      media_ttl: ttl,
      media_rotate: 0,
      metadata: {},
    };
    const device: SandboxDevice = { id: spec.id, ident: spec.ident, item, log: new DeviceLog(this.capacity, ttl * 1000) };
    this.devices.set(spec.id, device);
    this.deviceByIdent.set(spec.ident, device);
    return device;
  }

  deviceOf(ident: string): SandboxDevice | undefined {
    return this.deviceByIdent.get(ident);
  }

  channel(id: number): SandboxChannel {
    const channel = this.channels.get(id);
    if (!channel) throw new SandboxInputError(`channel ${id} not found: the sandbox has channels ${[...this.channels.keys()].join(', ')}`, 404);
    return channel;
  }

  /** Called with every batch of stored messages (MQTT publishing, waking long-polls). */
  onIngest(listener: IngestListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when a channel's `blocked` changes (its buffer became full, or has room again). */
  onBlockChange(listener: BlockListener): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  /**
   * Stores messages as if devices sent them to the channel. Fills what the channel adds: `channel.id`,
   * `server.timestamp` (when missing; never going backwards), `protocol.id` and `timestamp` (when missing),
   * and `device.*` for registered idents. Validates the whole batch first: nothing is stored if one is bad.
   * A channel whose buffer is full is blocked, as flespi blocks it: the messages from then on are
   * refused (counted in `refused`, not stored), the oldest are never dropped to make room, and its
   * `blocked` field shows BUFFER_FULL_BLOCK_CODE until deletes or the TTL make room.
   */
  ingest(channelId: number, messages: readonly unknown[]): StoredMessage[] {
    const channel = this.channel(channelId);
    const texts = messages.map((message, index) => serialize(message, index));
    const nowMs = Date.now();
    const entries: StoredMessage[] = [];
    this.expire(channel, nowMs);
    messages.forEach((message, index) => {
      if (channel.log.full) {
        channel.refused++;
        return;
      }
      const raw = message as FlespiMessage;
      const given = raw['server.timestamp'];
      const serverTs = typeof given === 'number' ? given : microseconds(Math.max(preciseNow() + this.clockOffsetMs / 1000, channel.lastStamp + 0.000001));
      channel.lastStamp = Math.max(channel.lastStamp, serverTs);
      const ident = raw.ident as string;
      const device = this.deviceByIdent.get(ident);
      const ts = typeof raw.timestamp === 'number' ? raw.timestamp : serverTs;
      // What the channel adds, in name order; parameters the message has already are kept.
      const added: [string, unknown][] = [['channel.id', channel.id]];
      if (device) added.push(['device.id', device.id], ['device.name', device.item.name], ['device.type.id', device.item.device_type_id]);
      added.push(['protocol.id', channel.protocol.id], ['server.timestamp', serverTs], ['timestamp', ts]);
      const json = withParameters(raw, texts[index] as string, added);
      const entry = channel.log.append((key) => ({ key, channelId, ident, deviceId: device?.id, serverTs, ts, storedAt: nowMs, json }));
      if (device) {
        device.log.insert(entry);
        device.item.last_active = Math.floor(serverTs);
        device.item.connected = true;
      }
      entries.push(entry);
    });
    this.expire(channel, nowMs);
    for (const listener of this.listeners) listener(channel, entries);
    return entries;
  }

  /** Applies TTL and capacity, refreshes `messages_size` (KB, like flespi) and `blocked` (the buffer is full). */
  expire(channel: SandboxChannel, nowMs = Date.now()): void {
    channel.log.expire(nowMs);
    channel.item.messages_size = Math.ceil(channel.log.chars / 1024);
    const blocked = channel.log.full ? BUFFER_FULL_BLOCK_CODE : 0;
    if (channel.item.blocked !== blocked) {
      channel.item.blocked = blocked;
      for (const listener of this.blockListeners) listener(channel);
    }
    for (const device of this.devices.values()) {
      device.log.expire(nowMs);
      device.item.messages_size = Math.ceil(device.log.chars / 1024);
    }
  }
}

/** Validates a message and returns its JSON text; throws SandboxInputError saying what to fix. */
function serialize(message: unknown, index: number): string {
  const where = `message ${index + 1}`;
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new SandboxInputError(`${where} is not a JSON object: send an array of flat objects like {"ident":"352625333222111","position.latitude":56.95}`);
  }
  const m = message as FlespiMessage;
  if (typeof m.ident !== 'string' || m.ident === '') {
    throw new SandboxInputError(`${where} has no "ident" string: every flespi message names its device ident`);
  }
  if (FORBIDDEN_IDENT.test(m.ident)) {
    throw new SandboxInputError(`${where} has ident ${JSON.stringify(m.ident)} with #, +, / or control characters, which flespi does not allow`);
  }
  for (const name of ['timestamp', 'server.timestamp']) {
    const value = m[name];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) {
      throw new SandboxInputError(`${where} has a non-numeric "${name}": use UNIX seconds as a number, or leave it out`);
    }
  }
  try {
    return JSON.stringify(m);
  } catch (error) {
    throw new SandboxInputError(
      `${where} cannot be written as JSON (${error instanceof Error ? error.message : String(error)}): use plain numbers, strings, booleans, arrays and objects`,
    );
  }
}

/** UNIX seconds with microseconds (Date.now() has only milliseconds). */
function preciseNow(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}

/**
 * The message's JSON with the channel's parameters put in front (no re-serialization of the message:
 * this runs for every message). `channel.id` always wins; the others only fill what is missing.
 */
function withParameters(raw: FlespiMessage, json: string, added: [string, unknown][]): string {
  const missing = added.filter(([name]) => raw[name] === undefined);
  if (raw['channel.id'] !== undefined && raw['channel.id'] !== (added[0] as [string, unknown])[1]) {
    return JSON.stringify({ ...Object.fromEntries(missing), ...raw, 'channel.id': (added[0] as [string, unknown])[1] });
  }
  if (missing.length === 0) return json;
  const front = missing.map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`).join(',');
  return json === '{}' ? `{${front}}` : `{${front},${json.slice(1)}`;
}
