// flespi message -> bytes in one pass (what encodeMessage runs)
//
// The same mapping as messageToPacket + encodePacket, byte for byte, without building block objects:
// parameters are written straight into a reused buffer (parameterBlocks), what each name means is
// looked up once per name (parameterNames.ts), and the fixed blocks (posinfo, avl_inputs, avl_outputs)
// are put in front at the end. Messages with a name that needs renaming or is reserved, and reentrant
// calls (a toJSON that encodes), take the general path instead: fastEncode returns undefined for them
// before reporting anything.
import type { FlespiMessage } from '../message';
import { clamp, finite, jsonText, timeOf, unitIdOf, type EncodeIssue } from './messageToPacket';
import { newPacket, writeAsciiz } from './packetEncoder';
import { nameInfo, type NameInfo } from './parameterNames';
import { BLOCK_MARKER, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, POSINFO_BYTES, TYPE_BYTE, UINT32_MAX, WialonFlags } from './protocol';

// The encoder's working memory, reused from message to message; one message at a time (see encoderBusy).
/** Set while a message is being encoded: a reentrant call takes the general path instead of overwriting what follows. */
let encoderBusy = false;
/** The names and values of the message being encoded. */
const messageKeys: string[] = [];
const messageValues: unknown[] = [];
/** By position: the names of the latest message (usually those of the next one too) and what they mean. */
const lastNames: string[] = [];
const lastNameInfos: NameInfo[] = [];
/** Grows as needed; holds the parameter blocks of the message being encoded. */
let parameterBlocks = Buffer.allocUnsafe(64 * 1024);
let parameterBlocksView = new DataView(parameterBlocks.buffer, parameterBlocks.byteOffset, parameterBlocks.byteLength);
/** Issues of the message being encoded, reported only once it encoded (the general path reports its own). */
const pendingIssues: EncodeIssue[] = [];

const POSINFO_BLOCK_BYTES = 6 + 2 + 'posinfo'.length + 1 + POSINFO_BYTES;
const IO_BLOCK_BYTES = { din: 6 + 2 + 'avl_inputs'.length + 1 + 4, dout: 6 + 2 + 'avl_outputs'.length + 1 + 4 };

export function fastEncode(message: FlespiMessage, onIssue: ((issue: EncodeIssue) => void) | undefined): Buffer | undefined {
  // Own names only; an object with a prototype of its own might inherit parameters: general path.
  // A reentrant call (a getter or toJSON that encodes) would overwrite the shared buffers: general path.
  if (encoderBusy || !isPlainObject(message) || hasEnumerableObjectPrototype()) return undefined;
  encoderBusy = true;
  try {
    return encodePlainObject(message, onIssue);
  } finally {
    encoderBusy = false;
  }
}

/** Someone added an enumerable property to Object.prototype: for-in would list it as a parameter. */
function hasEnumerableObjectPrototype(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function encodePlainObject(message: FlespiMessage, onIssue: ((issue: EncodeIssue) => void) | undefined): Buffer | undefined {
  // Pass 1: what each name means, and the values the header and the fixed blocks need. for-in reads
  // the values by position from V8's enum cache, with none of the allocations of Object.keys/values.
  let count = 0;
  for (const key in message) {
    messageKeys[count] = key;
    messageValues[count++] = message[key];
  }
  let ident: unknown;
  let timestamp: unknown;
  let latitude: number | undefined;
  let longitude: number | undefined;
  let dinMask: number | undefined;
  let doutMask: number | undefined;
  for (let i = 0; i < count; i++) {
    const key = messageKeys[i]!;
    const value = messageValues[i];
    // Messages of one device usually list the same names in the same order: compare before looking up.
    let info = lastNameInfos[i];
    if (lastNames[i] !== key || !info) {
      info = nameInfo(key);
      lastNames[i] = key;
      lastNameInfos[i] = info;
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

  // Pass 2: the parameter blocks, into parameterBlocks.
  const hasPosition = latitude !== undefined && longitude !== undefined;
  let dinBits: number | undefined;
  let doutBits: number | undefined;
  let altitude = 0;
  let speed = 0;
  let course = 0;
  let satellites = 0;
  let driver = false;
  let o = 0;
  pendingIssues.length = 0;
  for (let i = 0; i < count; i++) {
    const value = messageValues[i];
    const info = lastNameInfos[i]!;
    if (value === undefined || info.header) continue;
    if (info.kind === 'bad') {
      pendingIssues.push({ parameter: messageKeys[i]!, action: 'skipped', reason: info.reason! });
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
    const written = writeParameter(o, messageKeys[i]!, info, value);
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
  parameterBlocks.copy(out, at, 0, o);
  if (pendingIssues.length > 0 && onIssue) {
    const reported = pendingIssues.splice(0);
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
 * Appends one parameter block at `o` in parameterBlocks; returns the new end (`o` itself when the
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
        parameterBlocksView.setUint32(at + 4, value - high * 2 ** 32);
        return at + 8;
      }
      writeFixed(o, info, TYPE_BYTE.double, 8).setFloat64(at, value, true);
      return at + 8;
    case 'bigint':
      if (value >= INT64_MIN && value <= INT64_MAX) {
        writeFixed(o, info, TYPE_BYTE.int64, 8).setBigInt64(at, value);
        return at + 8;
      }
      pendingIssues.push({ parameter: key, action: 'converted', reason: 'the integer does not fit 64 bits; sent as decimal text' });
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
        return skippedAt(
          o,
          key,
          `the ${Array.isArray(value) ? 'array' : 'object'} cannot be written as JSON (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      pendingIssues.push({ parameter: key, action: 'converted', reason: `Wialon has no ${Array.isArray(value) ? 'array' : 'object'} type; sent as JSON text` });
      return writeText(o, info, json);
    }
    default:
      return skippedAt(o, key, `a ${typeof value} value cannot be sent`);
  }
}

function skippedAt(o: number, parameter: string, reason: string): number {
  pendingIssues.push({ parameter, action: 'skipped', reason });
  return o;
}

/** Makes room for `bytes` more at `at`, keeping what is written before it. */
function reserve(at: number, bytes: number): void {
  if (at + bytes <= parameterBlocks.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(parameterBlocks.length * 2, at + bytes));
  parameterBlocks.copy(bigger, 0, 0, at);
  parameterBlocks = bigger;
  parameterBlocksView = new DataView(parameterBlocks.buffer, parameterBlocks.byteOffset, parameterBlocks.byteLength);
}

/** Marker, size, attribute, type and name of a block whose value has a fixed size; returns the view to write the value with. */
function writeFixed(o: number, info: NameInfo, type: number, valueBytes: number): DataView {
  const start = info.blockStart(type, valueBytes);
  reserve(o, start.length + valueBytes);
  parameterBlocks.set(start, o);
  return parameterBlocksView;
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
    parameterBlocks[end++] = code;
  }
  if (!ascii) end = at + parameterBlocks.write(text, at, 'utf8');
  parameterBlocks[end] = 0;
  parameterBlocksView.setUint32(o + 2, 2 + info.name.length + 1 + (end + 1 - at)); // the size counts bytes, known only now
  return end + 1;
}
