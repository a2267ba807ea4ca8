/**
 * Wialon Retranslator v1.0: turning flespi messages into packets, and strict decoding.
 *
 * Byte orders follow Gurtam's description (see docs/wialon.md): the packet size is u32 little-endian;
 * time, flags, block sizes, int32, int64 and the posinfo u16 fields are big-endian; doubles are little-endian.
 */
import { messageJson } from '../handlers/serialize';
import type { FlespiMessage } from '../message';

/** The one-byte acknowledgement a receiver sends for each correct packet. */
export const ACK_BYTE = 0x11;
/** First two bytes of every data block. */
export const BLOCK_MARKER = 0x0bbb;
/** Gurtam: "maximum name size is 38 bytes". Whether the NUL counts is unconfirmed; we do not count it. */
export const MAX_NAME_BYTES = 38;
/** Splitter guard against garbage on the port (e.g. "GET " read as a size of 542 MB). */
export const DEFAULT_MAX_PACKET_BYTES = 16 * 1024 * 1024;

export const WialonFlags = { position: 0x01, inputs: 0x02, outputs: 0x04, alarm: 0x10, driver: 0x20 } as const;

const TYPE_BYTE = { text: 1, binary: 2, posinfo: 2, int32: 3, double: 4, int64: 5, image: 6 } as const;
const POSINFO_BYTES = 29;
/** Names Gurtam reserves for blocks that must carry attribute 1 to be registered. */
const FIXED_NAMES: ReadonlySet<string> = new Set(['posinfo', 'avl_inputs', 'avl_outputs', 'avl_driver']);
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

export interface PosInfo {
  /** Degrees, east positive. Sent first: the block is longitude, latitude, altitude. */
  longitude: number;
  latitude: number;
  /** Metres above sea level. */
  altitude: number;
  /** km/h, u16. */
  speed: number;
  /** Degrees 0..359, u16. */
  course: number;
  /** u8. */
  satellites: number;
}

/** One data block. `attribute` 1 = hidden (required for posinfo/avl_*), 0 = shown. */
export type WialonBlock = { name: string; attribute: number } & (
  | { type: 'text'; value: string }
  | { type: 'int32'; value: number }
  | { type: 'double'; value: number }
  | { type: 'int64'; value: bigint }
  | { type: 'posinfo'; value: PosInfo }
  | { type: 'binary'; value: Buffer }
  | { type: 'image'; value: Buffer }
);

export interface WialonPacket {
  /** The controller ID: the unit's unique ID in Wialon (the flespi `ident`). */
  unitId: string;
  /** Seconds since the epoch, u32. */
  time: number;
  flags: number;
  blocks: WialonBlock[];
}

/** A packet could not be built: `field` names what is missing or wrong (`ident`, `timestamp`, a block name). */
export class WialonEncodeError extends Error {
  override readonly name = 'WialonEncodeError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes that are not a valid packet; `offset` counts from the first byte of the packet's size field. */
export class WialonDecodeError extends Error {
  override readonly name = 'WialonDecodeError';
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`${reason} (at byte ${offset})`);
  }
}

/** A parameter that was not sent exactly as it is in the flespi message. */
export interface EncodeIssue {
  /** The flespi parameter name. */
  parameter: string;
  /** skipped: not sent; renamed: sent under `sentAs`; converted: sent as JSON text. */
  action: 'skipped' | 'renamed' | 'converted';
  reason: string;
  sentAs?: string;
}

export interface EncodeOptions {
  /** Told about every parameter that was skipped, renamed or converted. Nothing is dropped without a call. */
  onIssue?: (issue: EncodeIssue) => void;
}

// ---------------------------------------------------------------------------------------------
// flespi message -> packet (the mapping rules of docs/wialon.md)

/** One flespi message as one Retranslator packet. Throws WialonEncodeError when `ident` or `timestamp` is unusable. */
export function encodeMessage(message: FlespiMessage, options: EncodeOptions = {}): Buffer {
  return fastEncode(message, options.onIssue) ?? encodePacket(messageToPacket(message, options));
}

/** The packet `encodeMessage` would send, before serialization. */
export function messageToPacket(message: FlespiMessage, options: EncodeOptions = {}): WialonPacket {
  const report = options.onIssue ?? ignoreIssue;
  const unitId = unitIdOf(message.ident);
  const time = timeOf(message.timestamp);
  const consumed = new Set(['ident', 'timestamp']);
  const blocks: WialonBlock[] = [];

  const position = positionOf(message, consumed);
  if (position) blocks.push({ name: 'posinfo', attribute: 1, type: 'posinfo', value: position });
  const inputs = ioMaskOf(message, 'din', consumed);
  if (inputs !== undefined) blocks.push({ name: 'avl_inputs', attribute: 1, type: 'int32', value: inputs });
  const outputs = ioMaskOf(message, 'dout', consumed);
  if (outputs !== undefined) blocks.push({ name: 'avl_outputs', attribute: 1, type: 'int32', value: outputs });

  const names = new Set(blocks.map((b) => b.name));
  for (const key of Object.keys(message)) {
    const value = message[key];
    if (consumed.has(key) || value === undefined) continue;
    const block = parameterBlock(key, value, report);
    if (!block) continue;
    if (block.name === 'posinfo' || names.has(block.name)) {
      const why = block.name === 'posinfo' ? 'the name "posinfo" is reserved for the position block' : `the Wialon name "${block.name}" is already used in this packet`;
      report({ parameter: key, action: 'skipped', reason: why });
      continue;
    }
    names.add(block.name);
    blocks.push(block);
  }

  let flags = 0;
  if (names.has('posinfo')) flags |= WialonFlags.position;
  if (names.has('avl_inputs')) flags |= WialonFlags.inputs;
  if (names.has('avl_outputs')) flags |= WialonFlags.outputs;
  if (names.has('avl_driver')) flags |= WialonFlags.driver;
  return { unitId, time, flags, blocks };
}

function ignoreIssue(): void {}

function unitIdOf(ident: unknown): string {
  if (ident === undefined || ident === null) throw new WialonEncodeError('ident', 'message has no "ident": Wialon needs it as the unit ID, so the message cannot be sent');
  if (typeof ident !== 'string' || ident === '') throw new WialonEncodeError('ident', `"ident" must be a non-empty string, got ${JSON.stringify(ident)}`);
  if (!isPrintableAscii(ident)) throw new WialonEncodeError('ident', `"ident" ${JSON.stringify(ident)} has characters outside printable ASCII; Wialon unit IDs are ASCII`);
  return ident;
}

function timeOf(timestamp: unknown): number {
  if (timestamp === undefined || timestamp === null) throw new WialonEncodeError('timestamp', 'message has no "timestamp": Wialon needs the message time, so the message cannot be sent');
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) throw new WialonEncodeError('timestamp', `"timestamp" must be a number of seconds, got ${JSON.stringify(timestamp)}`);
  const seconds = Math.floor(timestamp);
  if (seconds < 0 || seconds > UINT32_MAX) throw new WialonEncodeError('timestamp', `"timestamp" ${timestamp} does not fit Wialon's unsigned 32-bit seconds field`);
  return seconds;
}

/** posinfo needs latitude and longitude; other fields default to 0. The fields used are not repeated as parameters. */
function positionOf(message: FlespiMessage, consumed: Set<string>): PosInfo | undefined {
  const latitude = finite(message['position.latitude']);
  const longitude = finite(message['position.longitude']);
  if (latitude === undefined || longitude === undefined) return undefined;
  consumed.add('position.latitude');
  consumed.add('position.longitude');
  const course = Math.round(positionField(message, 'position.direction', consumed)) % 360;
  return {
    longitude,
    latitude,
    altitude: positionField(message, 'position.altitude', consumed),
    speed: clamp(Math.round(positionField(message, 'position.speed', consumed)), 0, 0xffff),
    course: course < 0 ? course + 360 : course,
    satellites: clamp(Math.round(positionField(message, 'position.satellites', consumed)), 0, 0xff),
  };
}

/** A numeric position field for posinfo (0 when absent); marks it as folded into posinfo. */
function positionField(message: FlespiMessage, key: string, consumed: Set<string>): number {
  const value = finite(message[key]);
  if (value === undefined) return 0;
  consumed.add(key);
  return value;
}

/**
 * The avl_inputs/avl_outputs bit mask: from `din`/`dout` when it is an integer 0..2^32-1, otherwise from the
 * booleans `din.1`..`din.32` (din.N is bit N-1). Sent as the int32 with the same bits (bit 31 reads negative).
 */
function ioMaskOf(message: FlespiMessage, base: 'din' | 'dout', consumed: Set<string>): number | undefined {
  const mask = message[base];
  if (typeof mask === 'number' && Number.isInteger(mask) && mask >= 0 && mask <= UINT32_MAX) {
    consumed.add(base);
    return mask | 0;
  }
  let bits: number | undefined;
  const prefix = base + '.';
  for (const key of Object.keys(message)) {
    if (!key.startsWith(prefix)) continue;
    const index = Number(key.slice(prefix.length));
    const value = message[key];
    if (!Number.isInteger(index) || index < 1 || index > 32 || String(index) !== key.slice(prefix.length) || typeof value !== 'boolean') continue;
    consumed.add(key);
    bits = (bits ?? 0) | (value ? 1 << (index - 1) : 0);
  }
  return bits;
}

/** One ordinary parameter as a block, or undefined (reported) when it cannot be sent. */
function parameterBlock(key: string, value: unknown, report: (issue: EncodeIssue) => void): WialonBlock | undefined {
  if (key === '') return skipped(report, key, 'the name is empty');
  if (!isPrintableAscii(key)) return skipped(report, key, 'the name has characters outside printable ASCII; Wialon parameter names are ASCII');
  let name = key;
  if (key.length > MAX_NAME_BYTES) {
    name = shortName(key);
    report({ parameter: key, action: 'renamed', reason: `the name is longer than Wialon's ${MAX_NAME_BYTES}-byte limit`, sentAs: name });
  }
  const attribute = FIXED_NAMES.has(name) ? 1 : 0;

  switch (typeof value) {
    case 'boolean':
      return { name, attribute, type: 'int32', value: value ? 1 : 0 };
    case 'number':
      if (!Number.isFinite(value)) return skipped(report, key, `the value ${value} is not a finite number`);
      if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) return { name, attribute, type: 'int32', value };
      if (Number.isSafeInteger(value)) return { name, attribute, type: 'int64', value: BigInt(value) };
      return { name, attribute, type: 'double', value };
    case 'bigint':
      if (value >= INT64_MIN && value <= INT64_MAX) return { name, attribute, type: 'int64', value };
      report({ parameter: key, action: 'converted', reason: 'the integer does not fit 64 bits; sent as decimal text' });
      return { name, attribute, type: 'text', value: value.toString() };
    case 'string':
      if (value.includes('\0')) return skipped(report, key, 'the text contains a NUL character, which would end a Wialon text value early');
      return { name, attribute, type: 'text', value };
    case 'object': {
      if (value === null) return skipped(report, key, 'the value is null');
      let json: string | undefined;
      try {
        json = jsonText(value);
      } catch (error) {
        return skipped(report, key, `the ${Array.isArray(value) ? 'array' : 'object'} cannot be written as JSON (${error instanceof Error ? error.message : String(error)})`);
      }
      report({ parameter: key, action: 'converted', reason: `Wialon has no ${Array.isArray(value) ? 'array' : 'object'} type; sent as JSON text` });
      return { name, attribute, type: 'text', value: json };
    }
    default:
      return skipped(report, key, `a ${typeof value} value cannot be sent`);
  }
}

/** JSON.stringify of an object or array, or for one nested deeper than the call stack allows, the same text written without recursion. */
function jsonText(value: object): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return messageJson(value);
  }
}

function skipped(report: (issue: EncodeIssue) => void, parameter: string, reason: string): undefined {
  report({ parameter, action: 'skipped', reason });
  return undefined;
}

/** A stable 38-byte name: the first 29 characters, "~" and 8 hex digits of a hash of the full name. */
export function shortName(name: string): string {
  let hash = 0x811c9dc5; // FNV-1a, 32 bits
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return `${name.slice(0, MAX_NAME_BYTES - 9)}~${(hash >>> 0).toString(16).padStart(8, '0')}`;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}

function isPrintableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// flespi message -> bytes in one pass (what encodeMessage runs)
//
// The same mapping as messageToPacket + encodePacket, byte for byte, without building block objects:
// parameters are written straight into a scratch buffer, what each name means is looked up once per
// name (names repeat from message to message), and the fixed blocks (posinfo, avl_inputs, avl_outputs)
// are put in front at the end. Messages with a name that needs renaming or is reserved, and reentrant
// calls (a toJSON that encodes), take the general path instead: fastEncode returns undefined for them
// before reporting anything.

/** What a parameter name means for the encoder, independent of its value. */
class NameInfo {
  /** The posinfo field this name feeds (when latitude and longitude are present). */
  position: keyof PosInfo | undefined = undefined;
  /** 'din'/'dout': the mask; with `bit`: the boolean din.N/dout.N. */
  io: 'din' | 'dout' | undefined = undefined;
  bit: number | undefined = undefined;
  /** `ident` and `timestamp` go into the packet header, never into a block. */
  header: 'ident' | 'timestamp' | undefined = undefined;
  /** Sets the avl_driver flag. */
  driver = false;
  /** By type byte: marker, size, attribute, type and name of a block with this name (the size fits fixed-size values). */
  private readonly starts: (Uint8Array | undefined)[] = [];

  constructor(
    /** 'plain' names are sent as they are; 'general' ones need the general path; 'bad' ones are always skipped. */
    readonly kind: 'plain' | 'general' | 'bad',
    readonly name = '',
    /** Why a 'bad' name is skipped. */
    readonly reason = '',
  ) {}

  /** The first 8 + name + 1 bytes of a block of `type` whose value takes `valueBytes`. */
  blockStart(type: number, valueBytes: number): Uint8Array {
    const known = this.starts[type];
    if (known) return known;
    const start = Buffer.alloc(8 + this.name.length + 1);
    start.writeUInt16BE(BLOCK_MARKER, 0);
    start.writeUInt32BE(2 + this.name.length + 1 + valueBytes, 2);
    start[6] = FIXED_NAMES.has(this.name) ? 1 : 0;
    start[7] = type;
    writeAsciiz(start, this.name, 8);
    this.starts[type] = start;
    return start;
  }
}

const POSITION_FIELDS: Readonly<Record<string, keyof PosInfo>> = {
  'position.latitude': 'latitude',
  'position.longitude': 'longitude',
  'position.altitude': 'altitude',
  'position.speed': 'speed',
  'position.direction': 'course',
  'position.satellites': 'satellites',
};
const NAME_CACHE_LIMIT = 10_000;
const nameCache = new Map<string, NameInfo>();
/** By position: the names of the latest message (usually those of the next one too) and what they mean. */
const names: string[] = [];
const infos: NameInfo[] = [];

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function nameInfo(key: string): NameInfo {
  const known = nameCache.get(key);
  if (known) return known;
  const info = classifyName(key);
  if (nameCache.size < NAME_CACHE_LIMIT) nameCache.set(key, info);
  return info;
}

function classifyName(key: string): NameInfo {
  if (key === '') return new NameInfo('bad', key, 'the name is empty');
  if (!isPrintableAscii(key)) return new NameInfo('bad', key, 'the name has characters outside printable ASCII; Wialon parameter names are ASCII');
  if (key.length > MAX_NAME_BYTES || key === 'posinfo' || key === 'avl_inputs' || key === 'avl_outputs') return new NameInfo('general', key);
  const info = new NameInfo('plain', key);
  info.position = POSITION_FIELDS[key];
  info.driver = key === 'avl_driver';
  if (key === 'ident' || key === 'timestamp') info.header = key;
  if (key === 'din' || key === 'dout') info.io = key;
  const io = /^(din|dout)\.([1-9]\d*)$/.exec(key);
  if (io && Number(io[2]) <= 32) {
    info.io = io[1] as 'din' | 'dout';
    info.bit = Number(io[2]) - 1;
  }
  return info;
}

/** Grows as needed; holds the parameter blocks of the message being encoded. */
let scratch = Buffer.allocUnsafe(64 * 1024);
let view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
let encoding = false;
/** Issues of the message being encoded, reported only once it encoded (the general path reports its own). */
const issues: EncodeIssue[] = [];

function reserve(at: number, bytes: number): void {
  if (at + bytes <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + bytes));
  scratch.copy(bigger, 0, 0, at);
  scratch = bigger;
  view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
}

const POSINFO_BLOCK_BYTES = 6 + 2 + 'posinfo'.length + 1 + POSINFO_BYTES;
const IO_BLOCK_BYTES = { din: 6 + 2 + 'avl_inputs'.length + 1 + 4, dout: 6 + 2 + 'avl_outputs'.length + 1 + 4 };

/** The names and values of the message being encoded, reused from message to message. */
const keys: string[] = [];
const values: unknown[] = [];

function fastEncode(message: FlespiMessage, onIssue: ((issue: EncodeIssue) => void) | undefined): Buffer | undefined {
  // Own names only; an object with a prototype of its own might inherit parameters: general path.
  // A reentrant call (a getter or toJSON that encodes) would overwrite the shared buffers: general path.
  if (encoding || !isPlainObject(message) || hasEnumerableObjectPrototype()) return undefined;
  encoding = true;
  try {
    return encodePlainObject(message, onIssue);
  } finally {
    encoding = false;
  }
}

/** Someone added an enumerable property to Object.prototype: for-in would list it as a parameter. */
function hasEnumerableObjectPrototype(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

function encodePlainObject(message: FlespiMessage, onIssue: ((issue: EncodeIssue) => void) | undefined): Buffer | undefined {
  // Pass 1: what each name means, and the values the header and the fixed blocks need. for-in reads
  // the values by position from V8's enum cache, with none of the allocations of Object.keys/values.
  let count = 0;
  for (const key in message) {
    keys[count] = key;
    values[count++] = message[key];
  }
  let ident: unknown;
  let timestamp: unknown;
  let latitude: number | undefined;
  let longitude: number | undefined;
  let dinMask: number | undefined;
  let doutMask: number | undefined;
  for (let i = 0; i < count; i++) {
    const key = keys[i]!;
    const value = values[i];
    // Messages of one device usually list the same names in the same order: compare before looking up.
    let info = infos[i];
    if (names[i] !== key || !info) {
      info = nameInfo(key);
      names[i] = key;
      infos[i] = info;
    }
    if (info.kind === 'general' && value !== undefined) return undefined;
    if (info.header === 'ident') ident = value;
    else if (info.header === 'timestamp') timestamp = value;
    else if (info.position === 'latitude') latitude = finite(value);
    else if (info.position === 'longitude') longitude = finite(value);
    else if (info.io === 'din' && info.bit === undefined) dinMask = ioMask(value);
    else if (info.io === 'dout' && info.bit === undefined) doutMask = ioMask(value);
  }
  const unitId = unitIdOf(ident);
  const time = timeOf(timestamp);

  // Pass 2: the parameter blocks, into the scratch buffer.
  const hasPosition = latitude !== undefined && longitude !== undefined;
  let dinBits: number | undefined;
  let doutBits: number | undefined;
  let altitude = 0;
  let speed = 0;
  let course = 0;
  let satellites = 0;
  let driver = false;
  let o = 0;
  issues.length = 0;
  for (let i = 0; i < count; i++) {
    const value = values[i];
    const info = infos[i]!;
    if (value === undefined || info.header) continue;
    if (info.kind === 'bad') {
      issues.push({ parameter: keys[i]!, action: 'skipped', reason: info.reason! });
      continue;
    }
    if (info.position && hasPosition && typeof value === 'number' && Number.isFinite(value)) {
      if (info.position === 'altitude') altitude = value;
      else if (info.position === 'speed') speed = value;
      else if (info.position === 'course') course = value;
      else if (info.position === 'satellites') satellites = value;
      continue; // latitude and longitude are known already
    }
    if (info.io) {
      const mask = info.io === 'din' ? dinMask : doutMask;
      if (info.bit === undefined) {
        if (mask !== undefined) continue;
      } else if (mask === undefined && typeof value === 'boolean') {
        const bit = value ? 1 << info.bit : 0;
        if (info.io === 'din') dinBits = (dinBits ?? 0) | bit;
        else doutBits = (doutBits ?? 0) | bit;
        continue;
      }
    }
    const written = writeParameter(o, keys[i]!, info, value);
    if (written !== o && info.driver) driver = true;
    o = written;
  }

  const inputs = dinMask ?? dinBits;
  const outputs = doutMask ?? doutBits;
  let flags = driver ? WialonFlags.driver : 0;
  let size = unitId.length + 1 + 8 + o;
  if (hasPosition) {
    flags |= WialonFlags.position;
    size += POSINFO_BLOCK_BYTES;
  }
  if (inputs !== undefined) {
    flags |= WialonFlags.inputs;
    size += IO_BLOCK_BYTES.din;
  }
  if (outputs !== undefined) {
    flags |= WialonFlags.outputs;
    size += IO_BLOCK_BYTES.dout;
  }
  const [out, blocksAt] = newPacket(size, unitId, time, flags);
  let at = blocksAt;
  if (latitude !== undefined && longitude !== undefined) {
    at = blockHeader(out, at, 'posinfo', 1, TYPE_BYTE.posinfo, POSINFO_BYTES);
    const turned = Math.round(course) % 360;
    out.writeDoubleLE(longitude, at);
    out.writeDoubleLE(latitude, at + 8);
    out.writeDoubleLE(altitude, at + 16);
    out.writeUInt16BE(clamp(Math.round(speed), 0, 0xffff), at + 24);
    out.writeUInt16BE(turned < 0 ? turned + 360 : turned, at + 26);
    out[at + 28] = clamp(Math.round(satellites), 0, 0xff);
    at += POSINFO_BYTES;
  }
  if (inputs !== undefined) at = out.writeInt32BE(inputs | 0, blockHeader(out, at, 'avl_inputs', 1, TYPE_BYTE.int32, 4));
  if (outputs !== undefined) at = out.writeInt32BE(outputs | 0, blockHeader(out, at, 'avl_outputs', 1, TYPE_BYTE.int32, 4));
  scratch.copy(out, at, 0, o);
  if (issues.length > 0 && onIssue) {
    const reported = issues.splice(0);
    for (const issue of reported) onIssue(issue);
  }
  return out;
}

/** A din/dout value that is a whole bit mask. */
function ioMask(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= UINT32_MAX ? value : undefined;
}

function blockHeader(buf: Buffer, at: number, name: string, attribute: number, type: number, valueBytes: number): number {
  buf.writeUInt16BE(BLOCK_MARKER, at);
  buf.writeUInt32BE(2 + name.length + 1 + valueBytes, at + 2);
  buf[at + 6] = attribute;
  buf[at + 7] = type;
  return writeAsciiz(buf, name, at + 8);
}

/**
 * Appends one parameter block at `o` in the scratch buffer; returns the new end (`o` itself when the
 * value cannot be sent, after reporting why). The rules are parameterBlock's.
 */
function writeParameter(o: number, key: string, info: NameInfo, value: unknown): number {
  const at = o + 8 + info.name.length + 1; // where a value goes
  switch (typeof value) {
    case 'boolean':
      writeFixed(o, info, TYPE_BYTE.int32, 4).setInt32(at, value ? 1 : 0);
      return at + 4;
    case 'number':
      if (!Number.isFinite(value)) return skippedAt(o, key, `the value ${value} is not a finite number`);
      if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) {
        writeFixed(o, info, TYPE_BYTE.int32, 4).setInt32(at, value);
        return at + 4;
      }
      if (Number.isSafeInteger(value)) {
        const high = Math.floor(value / 2 ** 32);
        writeFixed(o, info, TYPE_BYTE.int64, 8).setInt32(at, high);
        view.setUint32(at + 4, value - high * 2 ** 32);
        return at + 8;
      }
      writeFixed(o, info, TYPE_BYTE.double, 8).setFloat64(at, value, true);
      return at + 8;
    case 'bigint':
      if (value >= INT64_MIN && value <= INT64_MAX) {
        writeFixed(o, info, TYPE_BYTE.int64, 8).setBigInt64(at, value);
        return at + 8;
      }
      issues.push({ parameter: key, action: 'converted', reason: 'the integer does not fit 64 bits; sent as decimal text' });
      return writeText(o, info, value.toString());
    case 'string':
      if (value.includes('\0')) return skippedAt(o, key, 'the text contains a NUL character, which would end a Wialon text value early');
      return writeText(o, info, value);
    case 'object': {
      if (value === null) return skippedAt(o, key, 'the value is null');
      let json: string;
      try {
        json = jsonText(value);
      } catch (error) {
        return skippedAt(o, key, `the ${Array.isArray(value) ? 'array' : 'object'} cannot be written as JSON (${error instanceof Error ? error.message : String(error)})`);
      }
      issues.push({ parameter: key, action: 'converted', reason: `Wialon has no ${Array.isArray(value) ? 'array' : 'object'} type; sent as JSON text` });
      return writeText(o, info, json);
    }
    default:
      return skippedAt(o, key, `a ${typeof value} value cannot be sent`);
  }
}

function skippedAt(o: number, parameter: string, reason: string): number {
  issues.push({ parameter, action: 'skipped', reason });
  return o;
}

/** Marker, size, attribute, type and name of a block whose value has a fixed size; returns the view to write the value with. */
function writeFixed(o: number, info: NameInfo, type: number, valueBytes: number): DataView {
  const start = info.blockStart(type, valueBytes);
  reserve(o, start.length + valueBytes);
  scratch.set(start, o);
  return view;
}

/** A text block: UTF-8 plus NUL. ASCII (the usual case) is copied by hand; anything else goes through Buffer#write. */
function writeText(o: number, info: NameInfo, text: string): number {
  const at = o + 8 + info.name.length + 1;
  reserve(o, at - o + text.length * 3 + 1); // UTF-8 needs at most 3 bytes per UTF-16 unit
  writeFixed(o, info, TYPE_BYTE.text, 0);
  let end = at;
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) {
      ascii = false;
      break;
    }
    scratch[end++] = code;
  }
  if (!ascii) end = at + scratch.write(text, at, 'utf8');
  scratch[end] = 0;
  view.setUint32(o + 2, 2 + info.name.length + 1 + (end + 1 - at)); // the size counts bytes, known only now
  return end + 1;
}

// ---------------------------------------------------------------------------------------------
// packet -> bytes

/** Serializes a packet. Validates every field, so a packet that encodes also decodes. */
export function encodePacket(packet: WialonPacket): Buffer {
  const { unitId, time, flags, blocks } = packet;
  if (unitId === '' || !isPrintableAscii(unitId)) throw new WialonEncodeError('unit id', `unit ID ${JSON.stringify(unitId)} must be non-empty printable ASCII`);
  if (!isUint32(time)) throw new WialonEncodeError('time', `time ${time} must be an integer from 0 to ${UINT32_MAX}`);
  if (!isUint32(flags)) throw new WialonEncodeError('flags', `flags ${flags} must be an integer from 0 to ${UINT32_MAX}`);

  const valueSizes = blocks.map(valueSize);
  let size = unitId.length + 1 + 8;
  for (let i = 0; i < blocks.length; i++) size += 6 + 2 + blocks[i].name.length + 1 + valueSizes[i];
  const [buf, blocksAt] = newPacket(size, unitId, time, flags);
  let o = blocksAt;
  for (let i = 0; i < blocks.length; i++) {
    const block = blocks[i];
    buf.writeUInt16BE(BLOCK_MARKER, o);
    buf.writeUInt32BE(2 + block.name.length + 1 + valueSizes[i], o + 2);
    buf[o + 6] = block.attribute;
    buf[o + 7] = TYPE_BYTE[block.type];
    o = writeValue(buf, writeAsciiz(buf, block.name, o + 8), block);
  }
  return buf;
}

/** A packet with `size` bytes after its size field, its header written; returns it and where the blocks start. */
function newPacket(size: number, unitId: string, time: number, flags: number): [Buffer, number] {
  if (size > UINT32_MAX) throw new WialonEncodeError('size', `the packet would be ${size} bytes, more than a u32 size field can say`);
  const buf = Buffer.allocUnsafe(4 + size);
  buf.writeUInt32LE(size, 0);
  const at = writeAsciiz(buf, unitId, 4);
  buf.writeUInt32BE(time, at);
  buf.writeUInt32BE(flags, at + 4);
  return [buf, at + 8];
}

/** Writes validated ASCII plus NUL; a plain loop beats Buffer#write for strings this short. */
function writeAsciiz(buf: Buffer, text: string, at: number): number {
  for (let i = 0; i < text.length; i++) buf[at + i] = text.charCodeAt(i);
  buf[at + text.length] = 0;
  return at + text.length + 1;
}

function isUint32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= UINT32_MAX;
}

/** Checks one block and returns the size of its value in bytes. */
function valueSize(block: WialonBlock): number {
  if (block.name === '' || !isPrintableAscii(block.name)) throw blockError(block, 'the name must be non-empty printable ASCII');
  if (block.name.length > MAX_NAME_BYTES) throw blockError(block, `the name is longer than ${MAX_NAME_BYTES} bytes`);
  if (block.attribute !== 0 && block.attribute !== 1) throw blockError(block, `attribute ${block.attribute} must be 0 or 1`);
  if ((block.name === 'posinfo') !== (block.type === 'posinfo')) throw blockError(block, 'only the posinfo block may be, and must be, of type posinfo');
  switch (block.type) {
    case 'text':
      if (block.value.includes('\0')) throw blockError(block, 'text must not contain NUL');
      return Buffer.byteLength(block.value, 'utf8') + 1;
    case 'int32':
      if (!Number.isInteger(block.value) || block.value < INT32_MIN || block.value > INT32_MAX) throw blockError(block, `${block.value} is not a 32-bit signed integer`);
      return 4;
    case 'double':
      if (!Number.isFinite(block.value)) throw blockError(block, `${block.value} is not a finite number`);
      return 8;
    case 'int64':
      if (block.value < INT64_MIN || block.value > INT64_MAX) throw blockError(block, `${block.value} is not a 64-bit signed integer`);
      return 8;
    case 'posinfo': {
      const p = block.value;
      if (![p.longitude, p.latitude, p.altitude].every(Number.isFinite)) throw blockError(block, 'longitude, latitude and altitude must be finite numbers');
      if (!isUintN(p.speed, 0xffff) || !isUintN(p.course, 0xffff) || !isUintN(p.satellites, 0xff)) throw blockError(block, 'speed and course must be integers 0..65535, satellites 0..255');
      return POSINFO_BYTES;
    }
    case 'binary':
    case 'image':
      return block.value.length;
  }
}

function blockError(block: WialonBlock, what: string): WialonEncodeError {
  return new WialonEncodeError(block.name, `block "${block.name}": ${what}`);
}

function isUintN(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

function writeValue(buf: Buffer, o: number, block: WialonBlock): number {
  switch (block.type) {
    case 'text':
      o += buf.write(block.value, o, 'utf8');
      buf[o] = 0;
      return o + 1;
    case 'int32':
      return buf.writeInt32BE(block.value, o);
    case 'double':
      return buf.writeDoubleLE(block.value, o);
    case 'int64':
      return buf.writeBigInt64BE(block.value, o);
    case 'posinfo': {
      const p = block.value;
      buf.writeDoubleLE(p.longitude, o);
      buf.writeDoubleLE(p.latitude, o + 8);
      buf.writeDoubleLE(p.altitude, o + 16);
      buf.writeUInt16BE(p.speed, o + 24);
      buf.writeUInt16BE(p.course, o + 26);
      buf[o + 28] = p.satellites;
      return o + POSINFO_BYTES;
    }
    case 'binary':
    case 'image':
      return o + block.value.copy(buf, o);
  }
}

// ---------------------------------------------------------------------------------------------
// bytes -> packet

/**
 * Decodes exactly one packet (size field included). Strict: the size must match, every block must start with
 * 0x0BBB and end inside the packet, names and text must be NUL-terminated, values must have their type's length.
 * Blocks are walked by their size fields, never by searching for 0x0BBB (a value may contain those bytes).
 */
export function decodePacket(buf: Buffer): WialonPacket {
  if (buf.length < 4) throw new WialonDecodeError(`${buf.length} bytes are too few for the 4-byte size field`, 0);
  const size = buf.readUInt32LE(0);
  if (size !== buf.length - 4) throw new WialonDecodeError(`the size field says ${size} bytes follow it, but ${buf.length - 4} do`, 0);

  const idEnd = buf.indexOf(0, 4);
  if (idEnd < 0) throw new WialonDecodeError('the unit ID has no terminating NUL', 4);
  const unitId = asciiText(buf, 4, idEnd, 'unit ID');
  let o = idEnd + 1;
  if (buf.length - o < 8) throw new WialonDecodeError(`time and flags need 8 bytes, only ${buf.length - o} remain`, o);
  const time = buf.readUInt32BE(o);
  const flags = buf.readUInt32BE(o + 4);
  o += 8;

  const blocks: WialonBlock[] = [];
  while (o < buf.length) {
    const start = o;
    if (buf.length - start < 6) throw new WialonDecodeError(`${buf.length - start} stray bytes after the last block (a block header has 6)`, start);
    const marker = buf.readUInt16BE(start);
    if (marker !== BLOCK_MARKER) throw new WialonDecodeError(`expected the block marker 0x0BBB, found 0x${marker.toString(16).padStart(4, '0').toUpperCase()}`, start);
    const blockSize = buf.readUInt32BE(start + 2);
    const end = start + 6 + blockSize;
    if (end > buf.length) throw new WialonDecodeError(`the block says ${blockSize} bytes follow its header, but only ${buf.length - start - 6} remain in the packet`, start);
    if (blockSize < 3) throw new WialonDecodeError(`block size ${blockSize} is too small for attribute, data type and name`, start);
    const attribute = buf[start + 6];
    const typeByte = buf[start + 7];
    const nameEnd = buf.indexOf(0, start + 8);
    if (nameEnd < 0 || nameEnd >= end) throw new WialonDecodeError('the block name has no terminating NUL inside the block', start + 8);
    const name = asciiText(buf, start + 8, nameEnd, 'block name');
    if (name.length > MAX_NAME_BYTES) throw new WialonDecodeError(`the block name "${name}" is longer than ${MAX_NAME_BYTES} bytes`, start + 8);
    if (attribute > 1) throw new WialonDecodeError(`block "${name}": attribute ${attribute} is neither 0 (shown) nor 1 (hidden)`, start + 6);
    blocks.push(decodeValue(buf, nameEnd + 1, end, name, attribute, typeByte));
    o = end;
  }
  return { unitId, time, flags, blocks };
}

function decodeValue(buf: Buffer, at: number, end: number, name: string, attribute: number, typeByte: number): WialonBlock {
  const length = end - at;
  if (name === 'posinfo' && typeByte !== TYPE_BYTE.posinfo) throw new WialonDecodeError(`block "posinfo" must have data type 2, found ${typeByte}`, at - name.length - 2);
  switch (typeByte) {
    case 1: {
      if (length < 1 || buf[end - 1] !== 0) throw new WialonDecodeError(`block "${name}": text value must end with a NUL byte`, at);
      const nul = buf.indexOf(0, at);
      if (nul !== end - 1) throw new WialonDecodeError(`block "${name}": text value has a NUL byte before its end`, nul);
      return { name, attribute, type: 'text', value: buf.toString('utf8', at, end - 1) };
    }
    case 2:
      if (name !== 'posinfo') return { name, attribute, type: 'binary', value: Buffer.from(buf.subarray(at, end)) };
      checkLength(length, POSINFO_BYTES, name, 'posinfo', at);
      return {
        name,
        attribute,
        type: 'posinfo',
        value: {
          longitude: buf.readDoubleLE(at),
          latitude: buf.readDoubleLE(at + 8),
          altitude: buf.readDoubleLE(at + 16),
          speed: buf.readUInt16BE(at + 24),
          course: buf.readUInt16BE(at + 26),
          satellites: buf[at + 28],
        },
      };
    case 3:
      checkLength(length, 4, name, 'int32', at);
      return { name, attribute, type: 'int32', value: buf.readInt32BE(at) };
    case 4:
      checkLength(length, 8, name, 'double', at);
      return { name, attribute, type: 'double', value: buf.readDoubleLE(at) };
    case 5:
      checkLength(length, 8, name, 'int64', at);
      return { name, attribute, type: 'int64', value: buf.readBigInt64BE(at) };
    case 6:
      return { name, attribute, type: 'image', value: Buffer.from(buf.subarray(at, end)) };
    default:
      throw new WialonDecodeError(`block "${name}": unknown data type ${typeByte} (known: 1 text, 2 binary, 3 int32, 4 double, 5 int64, 6 image)`, at - name.length - 2);
  }
}

function checkLength(length: number, bytes: number, name: string, what: string, at: number): void {
  if (length !== bytes) throw new WialonDecodeError(`block "${name}": ${what} value must be ${bytes} bytes, found ${length}`, at);
}

function asciiText(buf: Buffer, start: number, end: number, what: string): string {
  if (end === start) throw new WialonDecodeError(`the ${what} is empty`, start);
  for (let i = start; i < end; i++) {
    if (buf[i] < 0x20 || buf[i] > 0x7e) throw new WialonDecodeError(`the ${what} has the byte 0x${buf[i].toString(16).padStart(2, '0')}, outside printable ASCII`, i);
  }
  return buf.toString('latin1', start, end);
}

/** The value of the block called `name`, if the packet has one. */
export function findBlock(packet: WialonPacket, name: string): WialonBlock | undefined {
  return packet.blocks.find((b) => b.name === name);
}

// ---------------------------------------------------------------------------------------------
// framing

/**
 * Cuts a TCP byte stream into packets: 4 bytes of LE size, then that many bytes. Works across any read
 * boundary (including a read that ends right after the size field) and for any size, 256 and its multiples too.
 */
export class PacketSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private consumed = 0;

  constructor(readonly maxPacketBytes = DEFAULT_MAX_PACKET_BYTES) {}

  /** Bytes received but not yet part of a complete packet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds one read; returns the packets it completed, each with its size field. Throws WialonDecodeError
   * (with the stream offset) when a size field exceeds `maxPacketBytes`: the stream cannot be framed after that.
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const packets: Buffer[] = [];
    while (this.buffered >= 4) {
      const total = 4 + this.peekSize();
      if (total > this.maxPacketBytes) {
        throw new WialonDecodeError(`a packet size of ${total - 4} bytes exceeds the limit of ${this.maxPacketBytes}: the stream is not Wialon Retranslator, or is out of step`, this.consumed);
      }
      if (this.buffered < total) break;
      packets.push(this.take(total));
    }
    return packets;
  }

  private peekSize(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32LE(0);
    const head = Buffer.alloc(4);
    let filled = 0;
    for (const chunk of this.chunks) {
      filled += chunk.copy(head, filled, 0, Math.min(chunk.length, 4 - filled));
      if (filled === 4) break;
    }
    return head.readUInt32LE(0);
  }

  private take(length: number): Buffer {
    this.buffered -= length;
    this.consumed += length;
    const first = this.chunks[0];
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    return out;
  }
}
