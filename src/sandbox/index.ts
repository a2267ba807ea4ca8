// The flespi sandbox: a local flespi (REST + MQTT) with simulated trackers and fault injection.
// A client written for flespi works against it unchanged except for the base URL.
import { readFile } from 'node:fs/promises';
import type { FlespiMessage } from '../core/message';
import { FaultQueue, type Fault, type FaultKind, type FaultOptions } from './faults';
import type { StoredMessage } from './log';
import { SandboxBroker } from './mqtt/broker';
import { imeiLike, Random } from './random';
import { RestServer, type RestOptions } from './rest';
import { SimulatedVehicle, Simulator, type SimulationState } from './simulator';
import { SandboxInputError, SandboxStore, type ChannelSpec } from './store';
import { bareToken, randomToken, TokenRegistry } from './tokens';

export { SandboxStore, SandboxInputError } from './store';
export type { StoredMessage } from './log';
export type { FaultKind } from './faults';

export interface SandboxOptions {
  host?: string;
  /** 0 = a random free port. */
  restPort?: number;
  mqttPort?: number;
  /** The token clients use; default a random 64-character one. */
  token?: string;
  /** Default: 1001 "sandbox-teltonika" (teltonika) and 1002 "sandbox-wialon-ips" (wialon_ips). */
  channels?: ChannelSpec[];
  /** Simulated trackers per channel; all but the last of each channel are registered flespi devices. */
  devicesPerChannel?: number;
  /** Messages per second per simulated tracker. */
  rateHz?: number;
  /** Start the simulated trackers at once (default true); they can be started later over the control API. */
  simulate?: boolean;
  /** An NDJSON file of messages to replay (at rateHz × trackers messages/s) instead of the simulated trackers. */
  replayFile?: string;
  /** Makes idents, routes and sensor values reproducible. */
  seed?: number;
  /** Messages a channel buffer holds before the channel blocks (default 1,000,000), and a device log keeps (oldest dropped first). */
  capacity?: number;
  /**
   * A channel buffer's size limit in bytes of message JSON (default 100 MB, flespi's free plan). A full
   * channel is blocked as flespi blocks it: it refuses new messages and shows `blocked` 4 in REST and
   * on `flespi/state/gw/channels/{id}` until deletes or the TTL make room; nothing is dropped.
   */
  channelBufferBytes?: number;
  /** The sandbox's flespi clock minus the real one, in ms: `server.timestamp` stamps and the REST `Date` header are shifted by it. */
  clockOffsetMs?: number;
  /** false: key-based reading (`curr_key`/`next_key`/`delete_key`) is refused (400, code 2), as an API that reads channels only by time would. */
  keyReading?: boolean;
  /** `errors[].code` style: `flespi` small integers (default) or `http` statuses. */
  errorCodes?: RestOptions['errorCodes'];
  /** Listed ids of which none exists: 404 (default) or 200 with `errors`. */
  notFoundStatus?: RestOptions['notFoundStatus'];
  /** Items a collection answers per page at most (and without `limit`); default everything. */
  collectionLimit?: number;
  /** Channel messages_ttl in seconds. */
  channelMessagesTtl?: number;
  /**
   * The key of each channel's first message (default 1). flespi's keys only ever grow, but the sandbox
   * keeps its buffers in memory: a sandbox that may be restarted under running receivers (the CLI's
   * `sandbox` command) starts from a clock-based key, so its keys stay above those handed out before.
   */
  firstKey?: number;
  /**
   * Bytes of unacknowledged QoS 1 messages an MQTT session may hold before it overflows like flespi's:
   * the undelivered messages are dropped and the client disconnected. Default 1 GiB (flespi's limit).
   */
  mqttSessionMaxBytes?: number;
}

export interface SandboxFaults {
  /** Makes the next `count` flespi API requests (matching `options.match`) fail as `kind`. */
  inject(kind: FaultKind, count?: number, options?: FaultOptions): void;
  clear(): void;
  readonly pending: readonly Fault[];
  /** Closes every MQTT client connection abruptly; returns how many were connected. */
  dropMqttClients(): number;
}

export interface Sandbox {
  readonly restUrl: string;
  readonly mqttUrl: string;
  readonly token: string;
  readonly channels: ReadonlyArray<{ id: number; name: string }>;
  readonly store: SandboxStore;
  readonly faults: SandboxFaults;
  /** Stores messages as if devices had sent them to the channel (stamping server.timestamp, channel.id, ...). */
  inject(channelId: number, messages: FlespiMessage[]): StoredMessage[];
  /** Accepts another token over REST and MQTT; a blocked one gets 403 / MQTT "banned". */
  addToken(token: string, options?: { blocked?: boolean }): void;
  readonly simulation: SimulationState;
  setSimulation(settings: { rateHz?: number; running?: boolean }): SimulationState;
  stop(): Promise<void>;
}

const DEFAULT_CHANNELS: ChannelSpec[] = [
  { id: 1001, name: 'sandbox-teltonika', protocol: 'teltonika' },
  { id: 1002, name: 'sandbox-wialon-ips', protocol: 'wialon_ips' },
];

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const host = options.host ?? '127.0.0.1';
  const rateHz = options.rateHz ?? 1;
  if (!(rateHz > 0)) throw new SandboxInputError(`rateHz ${rateHz} is invalid: use messages per second per device, above 0`);
  const devicesPerChannel = options.devicesPerChannel ?? 3;
  const random = new Random(options.seed ?? Date.now());
  const token = bareToken(options.token ?? randomToken());

  const store = createStore(options);
  const tokens = new TokenRegistry();
  tokens.add(token);
  const faults = new FaultQueue();
  const vehicles = addChannelsAndDevices(store, options.channels ?? DEFAULT_CHANNELS, devicesPerChannel, random);
  const replay = options.replayFile ? await readReplay(options.replayFile, store) : [];

  const broker = createBroker(store, tokens, options.mqttSessionMaxBytes);
  publishStoreChanges(store, broker);

  const inject = (channelId: number, messages: unknown[]) => store.ingest(channelId, messages);
  const simulator = new Simulator(vehicles, rateHz, (channelId, messages) => inject(channelId, messages), replay);
  const setSimulation = (settings: SimulationSettings) => applySimulationSettings(simulator, settings);
  const dropMqttClients = () => dropAllMqttClients(broker);

  const urls: SandboxUrls = { rest: '', mqtt: '' };
  const rest = new RestServer({
    store,
    tokens,
    faults,
    options: {
      keyReading: options.keyReading,
      errorCodes: options.errorCodes,
      notFoundStatus: options.notFoundStatus,
      collectionLimit: options.collectionLimit,
    },
    control: { info: () => controlInfo(store, broker, faults, simulator, urls), inject, dropMqttClients, setSimulation },
  });
  await listen(rest, broker, host, options, urls);
  publishRetainedState(store, broker);
  if (options.simulate ?? true) simulator.start();

  let stopped: Promise<void> | undefined;
  return {
    restUrl: urls.rest,
    mqttUrl: urls.mqtt,
    token,
    channels: [...store.channels.values()].map((c) => ({ id: c.id, name: c.item.name as string })),
    store,
    faults: {
      inject: (kind, count = 1, faultOptions = {}) => faults.add(kind, count, faultOptions),
      clear: () => faults.clear(),
      get pending() {
        return faults.pending;
      },
      dropMqttClients,
    },
    inject: (channelId, messages) => inject(channelId, messages),
    addToken: (extra, tokenOptions) => tokens.add(extra, tokenOptions),
    get simulation() {
      return simulator.state;
    },
    setSimulation,
    stop() {
      stopped ??= (async () => {
        simulator.stop();
        await Promise.allSettled([rest.close(), broker.close()]);
      })();
      return stopped;
    },
  };
}

type SimulationSettings = { rateHz?: number; running?: boolean };
/** Where clients reach the sandbox; empty until `listen` has started each server. */
type SandboxUrls = { rest: string; mqtt: string };

function createStore(options: SandboxOptions): SandboxStore {
  return new SandboxStore({
    capacity: options.capacity,
    channelMessagesTtl: options.channelMessagesTtl,
    firstKey: options.firstKey,
    channelBufferBytes: options.channelBufferBytes,
    clockOffsetMs: options.clockOffsetMs,
  });
}

/**
 * Adds the channels, and per channel `devicesPerChannel` simulated trackers: all but the last are
 * registered flespi devices (every one when there is only one). Device ids start at 5000001.
 */
function addChannelsAndDevices(store: SandboxStore, channels: ChannelSpec[], devicesPerChannel: number, random: Random): SimulatedVehicle[] {
  const vehicles: SimulatedVehicle[] = [];
  let nextDeviceId = 5_000_001;
  for (const spec of channels) {
    const channel = store.addChannel(spec);
    for (let i = 0; i < devicesPerChannel; i++) {
      const ident = imeiLike(random);
      const registered = devicesPerChannel === 1 || i < devicesPerChannel - 1;
      if (registered) {
        const id = nextDeviceId++;
        store.addDevice({ id, name: `${channel.protocol.name}-${String(vehicles.length + 1).padStart(2, '0')}`, ident, protocol: channel.protocol.name });
      }
      vehicles.push(new SimulatedVehicle({ ident, channelId: channel.id, protocol: channel.protocol }, random, vehicles.length));
    }
    channel.item.connections_count = devicesPerChannel;
  }
  return vehicles;
}

/** The MQTT broker, taking the token as username or password. */
function createBroker(store: SandboxStore, tokens: TokenRegistry, maxSessionBytes: number | undefined): SandboxBroker {
  return new SandboxBroker({
    cid: store.cid,
    maxSessionBytes,
    authenticate(username, password) {
      for (const candidate of [username, password?.toString('utf8')]) {
        if (candidate === undefined || candidate === '') continue;
        const check = tokens.check(candidate);
        if (check === 'ok') return 'ok';
        if (check === 'blocked') return 'blocked';
      }
      return 'bad-credentials';
    },
  });
}

/** Every stored message goes out on its channel's (and device's) topic, as flespi publishes it. */
function publishStoreChanges(store: SandboxStore, broker: SandboxBroker): void {
  store.onIngest((channel, entries) => {
    const cid = String(store.cid);
    for (const entry of entries) {
      const userProperties = { timestamp: String(entry.serverTs), cid };
      broker.publish(`flespi/message/gw/channels/${channel.id}/${entry.ident}`, entry.json, { userProperties });
      if (entry.deviceId !== undefined) broker.publish(`flespi/message/gw/devices/${entry.deviceId}`, entry.json, { userProperties });
    }
  });

  // A channel blocked or unblocked by its buffer shows on its retained state topic, as its REST item does.
  store.onBlockChange((channel) => broker.publish(`flespi/state/gw/channels/${channel.id}`, JSON.stringify(channel.item), { retain: true }));
}

/** The retained state topics of every channel and device. */
function publishRetainedState(store: SandboxStore, broker: SandboxBroker): void {
  for (const channel of store.channels.values()) broker.publish(`flespi/state/gw/channels/${channel.id}`, JSON.stringify(channel.item), { retain: true });
  for (const device of store.devices.values()) broker.publish(`flespi/state/gw/devices/${device.id}`, JSON.stringify(device.item), { retain: true });
}

function applySimulationSettings(simulator: Simulator, settings: SimulationSettings): SimulationState {
  if (settings.rateHz !== undefined) simulator.setRate(settings.rateHz);
  if (settings.running === true) simulator.start();
  if (settings.running === false) simulator.stop();
  return simulator.state;
}

/** Closes every MQTT client connection abruptly; returns how many were connected. */
function dropAllMqttClients(broker: SandboxBroker): number {
  const count = broker.clientCount;
  broker.dropClients();
  return count;
}

/** What the control API's info request answers. */
function controlInfo(store: SandboxStore, broker: SandboxBroker, faults: FaultQueue, simulator: Simulator, urls: SandboxUrls) {
  return {
    sandbox: true,
    rest_url: urls.rest,
    mqtt_url: urls.mqtt,
    mqtt_clients: broker.clientCount,
    channels: [...store.channels.values()].map((c) => ({
      id: c.id,
      name: c.item.name,
      messages: c.log.size,
      first_key: c.log.firstKey,
      next_key: c.log.nextKey,
      blocked: c.item.blocked,
      refused: c.refused,
    })),
    devices: [...store.devices.values()].map((d) => ({ id: d.id, ident: d.ident, messages: d.log.size })),
    faults: faults.pending,
    simulation: simulator.state,
  };
}

/** Starts REST, then MQTT, filling in `urls`; if either cannot listen, both are closed. */
async function listen(
  rest: RestServer,
  broker: SandboxBroker,
  host: string,
  ports: Pick<SandboxOptions, 'restPort' | 'mqttPort'>,
  urls: SandboxUrls,
): Promise<void> {
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  try {
    const restPort = await rest.listen(ports.restPort ?? 0, host);
    urls.rest = `http://${urlHost}:${restPort}`;
    const mqttPort = await broker.listen(ports.mqttPort ?? 0, host);
    urls.mqtt = `mqtt://${urlHost}:${mqttPort}`;
  } catch (error) {
    await Promise.allSettled([rest.close(), broker.close()]);
    throw error;
  }
}

/** Reads an NDJSON replay file; each message goes to its `channel.id` when that is a sandbox channel, else to the first. */
async function readReplay(file: string, store: SandboxStore): Promise<{ channelId: number; message: FlespiMessage }[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SandboxInputError(`cannot read the replay file ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const firstChannel = [...store.channels.keys()][0] as number;
  const out: { channelId: number; message: FlespiMessage }[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      throw new SandboxInputError(`replay file ${file} line ${index + 1} is not JSON: put one message object per line (NDJSON)`);
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message) || typeof (message as FlespiMessage).ident !== 'string') {
      throw new SandboxInputError(`replay file ${file} line ${index + 1} is not a message object with an "ident": put one message object per line (NDJSON)`);
    }
    const { 'server.timestamp': _restamped, ...rest } = message as FlespiMessage;
    const channelId = typeof rest['channel.id'] === 'number' && store.channels.has(rest['channel.id']) ? rest['channel.id'] : firstChannel;
    out.push({ channelId, message: rest });
  });
  return out;
}
