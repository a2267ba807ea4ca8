// packet -> bytes: serializes a WialonPacket, checking every field on the way.
import {
  BLOCK_MARKER,
  INT32_MAX,
  INT32_MIN,
  INT64_MAX,
  INT64_MIN,
  MAX_NAME_BYTES,
  POSINFO_BYTES,
  TYPE_BYTE,
  UINT32_MAX,
  WialonEncodeError,
  isPrintableAscii,
  type WialonBlock,
  type WialonPacket,
} from './protocol';

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
export function newPacket(size: number, unitId: string, time: number, flags: number): [Buffer, number] {
  if (size > UINT32_MAX) throw new WialonEncodeError('size', `the packet would be ${size} bytes, more than a u32 size field can say`);
  const buf = Buffer.allocUnsafe(4 + size);
  buf.writeUInt32LE(size, 0);
  const at = writeAsciiz(buf, unitId, 4);
  buf.writeUInt32BE(time, at);
  buf.writeUInt32BE(flags, at + 4);
  return [buf, at + 8];
}

/** Writes validated ASCII plus NUL; a plain loop beats Buffer#write for strings this short. */
export function writeAsciiz(buf: Buffer, text: string, at: number): number {
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
      if (!Number.isInteger(block.value) || block.value < INT32_MIN || block.value > INT32_MAX)
        throw blockError(block, `${block.value} is not a 32-bit signed integer`);
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
      if (!isUintN(p.speed, 0xffff) || !isUintN(p.course, 0xffff) || !isUintN(p.satellites, 0xff))
        throw blockError(block, 'speed and course must be integers 0..65535, satellites 0..255');
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
