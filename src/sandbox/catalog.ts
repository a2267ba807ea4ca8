// The sandbox's fixed objects: account, channel protocols, device types and streams.
// Ids and names are plausible, not flespi's real ones.

/** The sandbox account id (`cid` on items and in MQTT user properties). */
export const SANDBOX_CID = 1000001;

export interface MessageParameter {
  name: string;
  type: 'number' | 'boolean' | 'string';
  unit?: string;
  info: string;
}

export interface ProtocolInfo {
  id: number;
  name: string;
  title: string;
  description: string;
  deviceType: { id: number; name: string };
  /** Parameters this protocol's simulated devices send beyond the common ones. */
  extraParameters: readonly MessageParameter[];
}

const COMMON_PARAMETERS: readonly MessageParameter[] = [
  { name: 'ident', type: 'string', info: 'Device unique identifier (IMEI)' },
  { name: 'timestamp', type: 'number', unit: 's', info: 'Device time, UNIX seconds' },
  { name: 'server.timestamp', type: 'number', unit: 's', info: 'Time the channel received the message, UNIX seconds' },
  { name: 'position.latitude', type: 'number', unit: '°', info: 'Latitude' },
  { name: 'position.longitude', type: 'number', unit: '°', info: 'Longitude' },
  { name: 'position.altitude', type: 'number', unit: 'm', info: 'Altitude above sea level' },
  { name: 'position.speed', type: 'number', unit: 'km/h', info: 'Ground speed' },
  { name: 'position.direction', type: 'number', unit: '°', info: 'Course, clockwise from north' },
  { name: 'position.satellites', type: 'number', info: 'Satellites in use' },
  { name: 'position.hdop', type: 'number', info: 'Horizontal dilution of precision' },
  { name: 'position.valid', type: 'boolean', info: 'The position fix is valid' },
  { name: 'engine.ignition.status', type: 'boolean', info: 'Ignition is on' },
  { name: 'movement.status', type: 'boolean', info: 'The vehicle is moving' },
  { name: 'din', type: 'number', info: 'Digital inputs bitmask (bit 0: ignition)' },
  { name: 'external.powersource.voltage', type: 'number', unit: 'V', info: 'Vehicle power voltage' },
];

export const PROTOCOLS: readonly ProtocolInfo[] = [
  {
    id: 16,
    name: 'teltonika',
    title: 'Teltonika',
    description: 'Teltonika Codec 8 / 8E trackers (FMB, FMC, FMM series)',
    deviceType: { id: 744, name: 'teltonika-fmb920' },
    extraParameters: [
      { name: 'battery.voltage', type: 'number', unit: 'V', info: 'Internal battery voltage' },
      { name: 'gsm.signal.level', type: 'number', unit: '%', info: 'GSM signal level' },
      { name: 'gsm.mcc', type: 'number', info: 'Mobile country code' },
      { name: 'gsm.mnc', type: 'number', info: 'Mobile network code' },
      { name: 'gsm.lac', type: 'number', info: 'Location area code' },
      { name: 'gsm.cellid', type: 'number', info: 'Cell id' },
      { name: 'gsm.operator.code', type: 'string', info: 'MCC and MNC of the operator' },
      { name: 'gnss.status', type: 'boolean', info: 'GNSS receiver is on' },
      { name: 'event.priority.enum', type: 'number', info: 'AVL record priority (0 low, 1 high, 2 panic)' },
    ],
  },
  {
    id: 19,
    name: 'wialon_ips',
    title: 'Wialon IPS',
    description: 'Wialon IPS 1.1 / 2.0 text protocol over TCP',
    deviceType: { id: 31, name: 'wialon-ips' },
    extraParameters: [
      { name: 'dout', type: 'number', info: 'Digital outputs bitmask' },
      { name: 'gsm.signal.level', type: 'number', unit: '%', info: 'GSM signal level' },
      { name: 'fuel.level', type: 'number', unit: '%', info: 'Fuel tank level' },
    ],
  },
  {
    id: 24,
    name: 'queclink',
    title: 'Queclink',
    description: 'Queclink @Track ASCII protocol (GV, GL series)',
    deviceType: { id: 86, name: 'queclink-gv300' },
    extraParameters: [
      { name: 'battery.voltage', type: 'number', unit: 'V', info: 'Internal battery voltage' },
      { name: 'gsm.signal.level', type: 'number', unit: '%', info: 'GSM signal level' },
      { name: 'vehicle.mileage', type: 'number', unit: 'km', info: 'Odometer' },
    ],
  },
];

export function protocolByName(name: string): ProtocolInfo | undefined {
  return PROTOCOLS.find((p) => p.name === name);
}

/** The `/gw/channel-protocols` item of a protocol. */
export function protocolItem(protocol: ProtocolInfo): Record<string, unknown> {
  return {
    id: protocol.id,
    name: protocol.name,
    title: protocol.title,
    description: protocol.description,
    features: { tcp: true, udp: protocol.name === 'teltonika', commands: true },
    message_parameters: [...COMMON_PARAMETERS, ...protocol.extraParameters],
  };
}

/** Two plausible streams; the sandbox does not deliver to them. */
export function defaultStreams(): Record<string, unknown>[] {
  return [
    {
      id: 3001,
      name: 'sandbox-http-stream',
      cid: SANDBOX_CID,
      protocol_id: 1,
      enabled: true,
      blocked: 0,
      connected: false,
      queue_ttl: 86400,
      queue_size: 0,
      validate_message: '',
      metadata: {},
      configuration: { protocol: 'http', uri: 'https://example.com/flespi/messages', headers: {}, ident: '*' },
    },
    {
      id: 3002,
      name: 'sandbox-mqtt-stream',
      cid: SANDBOX_CID,
      protocol_id: 4,
      enabled: false,
      blocked: 0,
      connected: false,
      queue_ttl: 86400,
      queue_size: 0,
      validate_message: 'position.valid==true',
      metadata: {},
      configuration: { protocol: 'mqtt', uri: 'mqtts://broker.example.com:8883', topic: 'vehicles/%ident%', qos: 1 },
    },
  ];
}
