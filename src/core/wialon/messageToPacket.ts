// flespi message -> packet: the mapping rules of docs/wialon.md, as WialonPacket objects. The one-pass
// encoder (onePassEncoder.ts) applies the same rules and shares the helpers exported here.
import { messageJson } from '../handlers/serialize';
import type { FlespiMessage } from '../message';
import {
  FIXED_NAMES,
  INT32_MAX,
  INT32_MIN,
  INT64_MAX,
  INT64_MIN,
  MAX_NAME_BYTES,
  UINT32_MAX,
  WialonEncodeError,
  WialonFlags,
  isPrintableAscii,
  type PosInfo,
  type WialonBlock,
  type WialonPacket,
} from './protocol';

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
      const why =
        block.name === 'posinfo' ? 'the name "posinfo" is reserved for the position block' : `the Wialon name "${block.name}" is already used in this packet`;
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

export function unitIdOf(ident: unknown): string {
  if (ident === undefined || ident === null)
    throw new WialonEncodeError('ident', 'message has no "ident": Wialon needs it as the unit ID, so the message cannot be sent');
  if (typeof ident !== 'string' || ident === '') throw new WialonEncodeError('ident', `"ident" must be a non-empty string, got ${JSON.stringify(ident)}`);
  if (!isPrintableAscii(ident))
    throw new WialonEncodeError('ident', `"ident" ${JSON.stringify(ident)} has characters outside printable ASCII; Wialon unit IDs are ASCII`);
  return ident;
}

export function timeOf(timestamp: unknown): number {
  if (timestamp === undefined || timestamp === null)
    throw new WialonEncodeError('timestamp', 'message has no "timestamp": Wialon needs the message time, so the message cannot be sent');
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp))
    throw new WialonEncodeError('timestamp', `"timestamp" must be a number of seconds, got ${JSON.stringify(timestamp)}`);
  const seconds = Math.floor(timestamp);
  if (seconds < 0 || seconds > UINT32_MAX)
    throw new WialonEncodeError('timestamp', `"timestamp" ${timestamp} does not fit Wialon's unsigned 32-bit seconds field`);
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
        return skipped(
          report,
          key,
          `the ${Array.isArray(value) ? 'array' : 'object'} cannot be written as JSON (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      report({ parameter: key, action: 'converted', reason: `Wialon has no ${Array.isArray(value) ? 'array' : 'object'} type; sent as JSON text` });
      return { name, attribute, type: 'text', value: json };
    }
    default:
      return skipped(report, key, `a ${typeof value} value cannot be sent`);
  }
}

/** JSON.stringify of an object or array, or for one nested deeper than the call stack allows, the same text written without recursion. */
export function jsonText(value: object): string {
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

export function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}
