// bytes -> packet: the strict decoder (what the test receiver and the tests read packets with).
import { BLOCK_MARKER, MAX_NAME_BYTES, POSINFO_BYTES, TYPE_BYTE, WialonDecodeError, type WialonBlock, type WialonPacket } from './protocol';

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
    if (marker !== BLOCK_MARKER)
      throw new WialonDecodeError(`expected the block marker 0x0BBB, found 0x${marker.toString(16).padStart(4, '0').toUpperCase()}`, start);
    const blockSize = buf.readUInt32BE(start + 2);
    const end = start + 6 + blockSize;
    if (end > buf.length)
      throw new WialonDecodeError(`the block says ${blockSize} bytes follow its header, but only ${buf.length - start - 6} remain in the packet`, start);
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
  if (name === 'posinfo' && typeByte !== TYPE_BYTE.posinfo)
    throw new WialonDecodeError(`block "posinfo" must have data type 2, found ${typeByte}`, at - name.length - 2);
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
      throw new WialonDecodeError(
        `block "${name}": unknown data type ${typeByte} (known: 1 text, 2 binary, 3 int32, 4 double, 5 int64, 6 image)`,
        at - name.length - 2,
      );
  }
}

function checkLength(length: number, bytes: number, name: string, what: string, at: number): void {
  if (length !== bytes) throw new WialonDecodeError(`block "${name}": ${what} value must be ${bytes} bytes, found ${length}`, at);
}

function asciiText(buf: Buffer, start: number, end: number, what: string): string {
  if (end === start) throw new WialonDecodeError(`the ${what} is empty`, start);
  for (let i = start; i < end; i++) {
    if (buf[i] < 0x20 || buf[i] > 0x7e)
      throw new WialonDecodeError(`the ${what} has the byte 0x${buf[i].toString(16).padStart(2, '0')}, outside printable ASCII`, i);
  }
  return buf.toString('latin1', start, end);
}

/** The value of the block called `name`, if the packet has one. */
export function findBlock(packet: WialonPacket, name: string): WialonBlock | undefined {
  return packet.blocks.find((b) => b.name === name);
}
